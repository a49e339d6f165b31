# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply: the only code that changes the host.

``Host`` holds the file-system side (paths, atomic writes, sysctl reads); ``Applier`` runs a
plan's commands, starts and stops the interface; ``restore`` puts back a snapshot after a failed
apply. Never called in check mode.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import CommandError, TunnelgateError, read_text, write_file_atomic
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import (
    CONFIG_DIR,
    DROPIN_NAME,
    KERNEL_ONLY_SENTINEL,
    SYSTEMD_DIR,
    _sorted_routes,
    _sorted_rules,
    route_argv,
    rule_argv,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.live import parse_wg_dump, read_live, read_routes, read_rules
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.plan import make_plan


class Host:
    """File-system facts and helpers the applier needs (replaced in unit tests)."""

    def __init__(self, config_dir=CONFIG_DIR, systemd_dir=SYSTEMD_DIR, proc_sys="/proc/sys", systemd=None):
        self.config_dir = config_dir
        self.systemd_dir = systemd_dir
        self.proc_sys = proc_sys
        self.systemd = os.path.isdir("/run/systemd/system") if systemd is None else systemd

    def config_path(self, name):
        return os.path.join(self.config_dir, "%s.conf" % name)

    def dropin_path(self, name):
        return os.path.join(self.systemd_dir, "wg-quick@%s.service.d" % name, DROPIN_NAME)

    def ipv6_disabled(self, name):
        """IPv6 is off for ``name``: a new interface inherits ``default``, an existing one has its own."""
        conf = os.path.join(self.proc_sys, "net", "ipv6", "conf")
        values = [read_text(os.path.join(conf, dev, "disable_ipv6")) for dev in ("default", name)]
        return any(value is not None and value.strip() == "1" for value in values)

    def sysctl(self, key):
        value = read_text(os.path.join(self.proc_sys, *key.split(".")))
        return None if value is None else value.strip()

    def write(self, path, content, mode, module=None):
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700 if directory == self.config_dir else 0o755)
        write_file_atomic(path, content, mode, module)

    def remove(self, path):
        if os.path.exists(path):
            os.unlink(path)
            parent = os.path.dirname(path)
            if parent.endswith(".service.d") and not os.listdir(parent):
                os.rmdir(parent)


class Applier:
    """Runs a plan's commands. The only code that changes the host."""

    def __init__(self, runner, host, module=None):
        self.runner = runner
        self.host = host
        self.module = module

    def wg_quick_env(self, kind):
        if kind == "userspace":
            return {"WG_QUICK_USERSPACE_IMPLEMENTATION": "wireguard-go"}
        if kind == "kernel":
            return {"WG_QUICK_USERSPACE_IMPLEMENTATION": KERNEL_ONLY_SENTINEL}
        return None

    def unit(self, name):
        return "wg-quick@%s.service" % name

    def unit_state(self, name):
        """(is-active output: active|activating|failed|inactive|..., enabled) of wg-quick@NAME."""
        if not self.host.systemd:
            return None, None
        _rc, active, _e = self.runner.run(["systemctl", "is-active", self.unit(name)], check=False)
        _rc, enabled, _e = self.runner.run(["systemctl", "is-enabled", self.unit(name)], check=False)
        return active.strip(), enabled.strip() == "enabled"

    def start(self, name, kind, use_unit):
        if use_unit:
            self.runner.run(["systemctl", "reset-failed", self.unit(name)], check=False)
            self.runner.run(["systemctl", "start", self.unit(name)])
        else:
            self.runner.run(["wg-quick", "up", name], environ=self.wg_quick_env(kind))

    def stop(self, name, unit_active, config_exists, owned_tables, owned_rules=frozenset()):
        if unit_active:
            self.runner.run(["systemctl", "stop", self.unit(name)], check=False)
        if self.runner.run(["ip", "link", "show", "dev", name], check=False)[0] == 0:
            if config_exists:
                self.runner.run(["wg-quick", "down", name], check=False)
            if self.runner.run(["ip", "link", "show", "dev", name], check=False)[0] == 0:
                self.runner.run(["ip", "link", "del", "dev", name])
        # Leftover rules/throw routes of the tunnel's table (wg-quick down runs our PostDown, but
        # a crash or a foreign teardown may have skipped it).
        for rule in _sorted_rules(read_rules(self.runner).elements()):
            if rule.table in owned_tables or rule in owned_rules:
                self.runner.run(rule_argv(rule, "del"), check=False)
        for route in _sorted_routes(read_routes(self.runner, name, owned_tables).elements()):
            self.runner.run(route_argv(route, name, "del"), check=False)

    def apply_live(self, plan):
        for key, value in plan.sysctls:
            self.runner.run(["sysctl", "-q", "-w", "%s=%s" % (key, value)])
        if plan.wg_args:
            self._wg_set(plan)
        for addr in plan.addr_del:
            self.runner.run(["ip", "address", "del", addr, "dev", plan.name])
        for addr in plan.addr_add:
            self.runner.run(["ip", "address", "add", addr, "dev", plan.name])
        if plan.mtu is not None:
            self.runner.run(["ip", "link", "set", "dev", plan.name, "mtu", str(plan.mtu)])
        for route in plan.route_add:
            self.runner.run(route_argv(route, plan.name, "replace"))
        for route in plan.route_del:
            self.runner.run(route_argv(route, plan.name, "del"), check=False)
        for rule in plan.rule_add:
            self.runner.run(rule_argv(rule, "add"))
        for rule in plan.rule_del:
            self.runner.run(rule_argv(rule, "del"), check=False)

    def _wg_set(self, plan):
        tmpdir = None
        try:
            paths = {}
            if plan.secret_files:
                tmpdir = tempfile.mkdtemp(prefix=".tunnelgate-", dir=self.host.config_dir)
                os.chmod(tmpdir, 0o700)
                for index, (placeholder, value) in enumerate(plan.secret_files.items()):
                    path = os.path.join(tmpdir, "k%d" % index)
                    write_file_atomic(path, value + "\n", 0o600)
                    paths[placeholder] = path
            for args in plan.wg_args:
                self.runner.run(["wg", "set", plan.name] + [paths.get(a, a) for a in args])
        finally:
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)


def _write_files(runner, host, module, config_path, file_after, dropin_path, dropin_after, plan):
    if plan.file_change:
        host.write(config_path, file_after, 0o600, module)
    if plan.dropin_change and dropin_after is not None:
        host.write(dropin_path, dropin_after, 0o644, module)
        runner.run(["systemctl", "daemon-reload"])


def _detect_implementation(runner, name):
    """auto: kernel when the kernel can create a wireguard link, else wireguard-go."""
    probe = "tgprobe%d" % (os.getpid() % 100000)
    rc, _out, _err = runner.run(["ip", "link", "add", "dev", probe, "type", "wireguard"], check=False)
    if rc == 0:
        runner.run(["ip", "link", "del", "dev", probe], check=False)
        return "kernel"
    if not runner.bin_path("wireguard-go", required=False):
        raise TunnelgateError("implementation", "the kernel cannot create a WireGuard interface and wireguard-go "
                              "is not installed (install wireguard-go or the wireguard kernel module)")
    return "userspace"


def _guard(runner, name, expected):
    rc, out, _err = runner.run(["wg", "show", name, "dump"], check=False)
    live_key = None
    if rc == 0:
        live_key = parse_wg_dump(out, name).get(name, {}).get("public_key")
    if live_key != expected:
        raise TunnelgateError("private_key_path", "after the change the live public key of %s is %s, but the key file's "
                              "public key is %s" % (name, live_key, expected))


def _restore(runner, host, applier, module, snapshot, desired, name, tables, use_unit):
    """Best effort: put back the previous files and live state. Returns a list of problems."""
    problems = []
    config_path = host.config_path(name)
    added_bypass = {r for r in desired.rules if r.table == "main" and r.fwmark is not None}
    try:
        if snapshot.file_text is None:
            host.remove(config_path)
        else:
            host.write(config_path, snapshot.file_text, 0o600, module)
        if host.systemd:
            if snapshot.dropin_text is None:
                host.remove(host.dropin_path(name))
            else:
                host.write(host.dropin_path(name), snapshot.dropin_text, 0o644, module)
    except OSError as exc:
        problems.append("files: %s" % exc)
    try:
        if not snapshot.exists:
            applier.stop(name, False, False, tables, added_bypass)
            return problems
        live_now = read_live(runner, name, tables)
        if not live_now.exists:
            applier.start(name, "auto", False)
            live_now = read_live(runner, name, tables)
        back = make_plan(snapshot, live_now, None, None, tables, owned_rules=added_bypass)
        applier.apply_live(back)
    except (CommandError, TunnelgateError) as exc:
        problems.append(str(exc))
    return problems
