"""Unit tests for the shared pieces in plugins/module_utils/_common.py."""

import os
import stat

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import (
    CommandError,
    CommandRunner,
    DifferenceTracker,
    TunnelgateError,
    read_text,
    redact_keys,
    write_file_atomic,
)


@pytest.mark.parametrize(
    "option, item, message, expected",
    [
        ("peers", None, "bad", "peers: bad"),
        ("allowed_ips", "peer laptop", "overlaps", "allowed_ips (peer laptop): overlaps"),
    ],
)
def test_error_names_the_option_first(option, item, message, expected):
    err = TunnelgateError(option, message, item=item)
    assert str(err) == expected
    assert err.option == option and err.item == item


class FakeModule:
    def __init__(self, rc=0, out="", err=""):
        self.calls = []
        self.result = (rc, out, err)

    def run_command(self, argv, **kwargs):
        self.calls.append((argv, kwargs))
        return self.result

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name


def test_runner_uses_argv_and_c_locale():
    module = FakeModule(out="ok")
    assert CommandRunner(module).run(["wg", "show"]) == (0, "ok", "")
    argv, kwargs = module.calls[0]
    assert argv == ["wg", "show"]
    assert kwargs["environ_update"]["LANG"] == "C" and kwargs["environ_update"]["LC_ALL"] == "C"
    assert kwargs["check_rc"] is False


def test_runner_raises_on_failure_without_stdin_in_message():
    module = FakeModule(rc=1, err="boom")
    with pytest.raises(CommandError) as info:
        CommandRunner(module).run(["wg", "set", "wg0"], data="SECRET")
    assert info.value.rc == 1 and "boom" in str(info.value)
    assert "SECRET" not in str(info.value)


def test_runner_returns_failure_when_not_checked():
    assert CommandRunner(FakeModule(rc=3, err="x")).run(["false"], check=False) == (3, "", "x")


def test_runner_extra_environment_and_bin_path():
    module = FakeModule()
    runner = CommandRunner(module)
    runner.run(["wg-quick", "up", "wg0"], environ={"WG_QUICK_USERSPACE_IMPLEMENTATION": "wireguard-go"})
    assert module.calls[0][1]["environ_update"]["WG_QUICK_USERSPACE_IMPLEMENTATION"] == "wireguard-go"
    assert runner.bin_path("wg") == "/usr/bin/wg"


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_new_file_is_private(tmp_path):
    target = tmp_path / "key"
    write_file_atomic(str(target), "secret\n")
    assert target.read_text() == "secret\n"
    assert _mode(target) == 0o600
    assert os.listdir(tmp_path) == ["key"]  # no temporary file left behind


def test_write_tightens_an_existing_open_file(tmp_path):
    target = tmp_path / "conf"
    target.write_text("old")
    os.chmod(target, 0o644)
    write_file_atomic(str(target), b"new", mode=0o640)
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o640


def test_write_through_module_atomic_move_keeps_mode(tmp_path):
    moved = []

    class Mover:
        def atomic_move(self, src, dest, unsafe_writes=False):
            # umask must be 077 while the move happens
            current = os.umask(0)
            os.umask(current)
            moved.append(current)
            os.replace(src, dest)

    target = tmp_path / "k"
    write_file_atomic(str(target), "x", module=Mover())
    assert moved == [0o077]
    assert _mode(target) == 0o600


def test_read_text(tmp_path):
    assert read_text(str(tmp_path / "missing")) is None
    (tmp_path / "f").write_text("hello")
    assert read_text(str(tmp_path / "f")) == "hello"


def test_difference_tracker():
    tracker = DifferenceTracker()
    tracker.add("mtu", 1420, 1420)
    assert not tracker.has_differences and tracker.differences() == []
    tracker.add("address", "10.0.0.1/32", "10.0.0.2/32")
    assert tracker.has_differences
    assert tracker.differences() == [{"item": "address", "before": "10.0.0.1/32", "after": "10.0.0.2/32"}]
    before, after = tracker.get_before_after()
    assert before == {"mtu": 1420, "address": "10.0.0.1/32"}
    assert after == {"mtu": 1420, "address": "10.0.0.2/32"}


def test_write_over_a_symlink_never_touches_its_target(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("someone else's")
    os.chmod(target, 0o644)
    link = tmp_path / "key"
    link.symlink_to(target)
    write_file_atomic(str(link), "secret")
    assert _mode(target) == 0o644 and target.read_text() == "someone else's"
    assert not link.is_symlink() and link.read_text() == "secret" and _mode(link) == 0o600


KEY = "KGZ1s8qjLzSBgcBQJ5X6vvlWf6q1T3nAmDGsEHtJ+0E="
PUB = "H5J/955Ub5W0d99c0MPfUYxBUNQvoQSewt+1H8FsXz8="


def test_command_error_message_has_stderr_never_stdout():
    err = CommandError(["wg", "show", "wg0", "dump"], 1, "%s\t%s\n" % (KEY, PUB), "")
    assert str(err) == "command wg show wg0 dump failed (rc=1): (no error output)"
    err = CommandError(["wg", "set"], 1, "", "bad key %s near %s\n" % (KEY, "x" * 60))
    assert KEY not in str(err) and KEY not in err.stderr and "bad key (redacted) near " in str(err)


def test_redact_keys_only_touches_key_shaped_tokens():
    assert redact_keys("a %s b %s c" % (KEY, PUB), keep={PUB}) == "a (redacted) b %s c" % PUB
    longer = "Q" * 43 + "Q=="  # base64, but not of 32 bytes: left alone
    assert redact_keys(longer) == longer and redact_keys("") == "" and redact_keys(None) is None


def test_runner_registers_secrets_for_ansible_to_mask():
    module = FakeModule()
    module.no_log_values = set()
    runner = CommandRunner(module)
    runner.no_log(KEY)
    runner.no_log(None)
    assert module.no_log_values == {KEY}
