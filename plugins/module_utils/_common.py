# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pieces every tunnelgate module shares: the error type, the command seam, atomic file writes.

Private to the collection (leading underscore): not a public API.
"""

from __future__ import annotations

import os
import re
import tempfile

# Commands are always run with a stable locale so their output can be parsed.
C_LOCALE = {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"}


class TunnelgateError(Exception):
    """A problem the user must fix, tied to the option (and item) that caused it.

    Modules turn it into ``fail_json(msg=str(err))``; ``str(err)`` always starts with
    the option name so the message says what to change.
    """

    def __init__(self, option, message, item=None):
        self.option = option
        self.item = item
        where = option if item is None else "%s (%s)" % (option, item)
        super().__init__("%s: %s" % (where, message))


# A WireGuard key as text: canonical base64 of 32 bytes (43 characters, the last one of the 16 that
# encode 4 zero bits, then "="), standing alone (not part of a longer base64 run).
KEY_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=(?![A-Za-z0-9+/=])")
REDACTED = "(redacted)"


def redact_keys(text, keep=()):
    """``text`` with every WireGuard-key-shaped token replaced by ``(redacted)``, except those in ``keep``.

    For text the module did not write itself (a command's stderr, a hand-made file): a private or
    preshared key looks exactly like a public one, so anything key-shaped goes unless it is known public.
    """
    if not text:
        return text
    return KEY_TOKEN_RE.sub(lambda match: match.group(0) if match.group(0) in keep else REDACTED, text)


class CommandError(Exception):
    """A command failed. Carries argv, rc and stderr (key-shaped text redacted), never stdin.

    The message never holds the command's stdout (``wg show NAME dump`` prints private keys): modules
    show ``str(err)`` and ``err.stderr`` only. ``stdout`` stays available to callers that parse it.
    """

    def __init__(self, argv, rc, stdout, stderr):
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = redact_keys(stderr or "")
        super().__init__("command %s failed (rc=%s): %s" % (
            redact_keys(" ".join(self.argv)), rc, self.stderr.strip() or "(no error output)"))


class CommandRunner:
    """The single seam between module logic and the host's commands.

    Unit tests replace it with a fake that returns canned output; modules build it from
    their AnsibleModule. Commands are argv lists (never a shell) with LANG=C.
    """

    def __init__(self, module):
        self._module = module

    def bin_path(self, name, required=True):
        return self._module.get_bin_path(name, required=required)

    def no_log(self, value):
        """Register a secret read from the host: Ansible masks it in anything the module returns."""
        if value:
            self._module.no_log_values.add(value)

    def run(self, argv, check=True, data=None, environ=None):
        env = dict(C_LOCALE)
        if environ:
            env.update(environ)
        rc, out, err = self._module.run_command(
            argv, data=data, environ_update=env, check_rc=False, binary_data=data is not None
        )
        if check and rc != 0:
            raise CommandError(argv, rc, out, err)
        return rc, out, err


def write_file_atomic(path, content, mode=0o600, module=None):
    """Write ``content`` to ``path`` atomically, with ``mode`` from the first byte on.

    The temporary file is created in the target directory with ``mode`` already set, so a
    secret is never readable by others, not even for an instant. With ``module`` given,
    ``module.atomic_move`` does the rename (keeps SELinux contexts); otherwise ``os.replace``.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp_path = tempfile.mkstemp(prefix=".tunnelgate-", dir=directory)
    try:
        os.fchmod(fd, mode)
        data = content.encode("utf-8") if isinstance(content, str) else content
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # atomic_move gives a NEW file 0666 & ~umask (and an existing one its old mode) before our
        # chmod: a umask of 077 and tightening an existing file first keep a secret private throughout.
        if os.path.lexists(path) and not os.path.islink(path):  # never chmod a symlink's target
            os.chmod(path, mode & os.stat(path).st_mode)
        old_umask = os.umask(0o077)
        try:
            if module is not None:
                module.atomic_move(tmp_path, path, unsafe_writes=False)
            else:
                os.replace(tmp_path, path)
        finally:
            os.umask(old_umask)
        os.chmod(path, mode)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)


def read_text(path):
    """Return the file's text, or None when it does not exist."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class DifferenceTracker:
    """Records (field, before, after) for a many-field resource; yields the diff.

    Modelled on the idea of community.docker's tracker: the plan records every field it
    compares, the module reports ``changed`` from it and shows ``diff`` built from it.
    Callers must only add values that are safe to show (fingerprints, never key material).
    """

    def __init__(self):
        self._entries = []

    def add(self, field, before, after):
        self._entries.append((field, before, after))

    @property
    def has_differences(self):
        return any(before != after for dummy, before, after in self._entries)

    def differences(self):
        return [
            {"item": field, "before": before, "after": after}
            for field, before, after in self._entries
            if before != after
        ]

    def get_before_after(self):
        before = {field: value for field, value, dummy in self._entries}
        after = {field: value for field, dummy, value in self._entries}
        return before, after
