# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DNS through a WireGuard interface: the collection's ONE mechanism (systemd-resolved or /etc/resolv.conf).

Decide, then act (used by the ``interface`` module's ``dns`` option, and through it by the roles):

* ``parse_entries`` validates the ``dns`` option into servers and search domains;
* ``detect_method`` picks ``resolved`` (systemd-resolved runs and /etc/resolv.conf points at its stub)
  or ``resolv_conf`` (everything else);
* ``read_live`` reads what is in place now, ``plan_present`` / ``plan_absent`` return a ``DnsPlan`` (what
  the diff shows), and only ``apply`` changes the host (never in check mode);
* ``hooks`` renders the wg-quick PostUp/PostDown lines that re-apply the same DNS whenever the tunnel
  comes up (boot, restart), so nothing else has to remember it.

Methods:

``resolved``
    The servers go on the tunnel link (``resolvectl dns``), with the routing domain ``~.`` (every name
    is looked up there) and ``default-route yes``. The link's settings vanish with the link.
``resolv_conf``
    /etc/resolv.conf gets managed content whose first line is ``MARKER``; the file it replaces is kept in
    /var/lib/tunnelgate/resolv.conf.NAME.orig (a symlink's target in ``.link``) and given back when the
    tunnel goes down or the interface is removed. The file is rewritten IN PLACE (a container's
    /etc/resolv.conf is a bind mount that cannot be renamed over); a symlink is replaced by a file.
    Guards keep a DHCP client or NetworkManager from rewriting it while the tunnel is up (lease
    renewals): a dhclient enter hook, a block in /etc/dhcpcd.enter-hook, a NetworkManager ``dns=none``
    drop-in, each written only where that client is installed.

The marker line and the saved file's path are those of the role script this replaces, so hosts
configured by it are adopted as they are (the original it kept is the one given back).

Runs on the managed host: standard library only. Private to the collection.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import (
    DifferenceTracker,
    TunnelgateError,
    read_text,
    write_file_atomic,
)

METHODS = ("auto", "resolved", "resolv_conf")
RESOLVED_STUBS = ("127.0.0.53", "127.0.0.54")
RESOLVED_RUN_DIR = "/run/systemd/resolve/"
MAX_RESOLV_CONF_SERVERS = 3  # glibc reads at most three nameserver lines (MAXNS)
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$")
NM_RELOAD = ["systemctl", "reload", "NetworkManager.service"]


class DnsHost:
    """Where things are on the host (unit tests point ``root`` at a temporary directory)."""

    def __init__(self, root="/"):
        self.root = root

    def path(self, absolute):
        return os.path.join(self.root, absolute.lstrip("/"))

    # -- the files this mechanism uses, as absolute paths on the host (hooks name them) --
    resolv_conf = "/etc/resolv.conf"
    state_dir = "/var/lib/tunnelgate"
    dhclient_hooks_dir = "/etc/dhcp/dhclient-enter-hooks.d"
    dhcpcd_enter_hook = "/etc/dhcpcd.enter-hook"
    dhcpcd_run_hooks = ("/usr/lib/dhcpcd/dhcpcd-run-hooks", "/lib/dhcpcd/dhcpcd-run-hooks")
    nm_conf_dir = "/etc/NetworkManager/conf.d"

    def saved_path(self, name):
        return "%s/resolv.conf.%s.orig" % (self.state_dir, name)

    def link_path(self, name):
        return "%s/resolv.conf.%s.link" % (self.state_dir, name)

    def ours_path(self, name):
        return "%s/resolv.conf.%s" % (self.state_dir, name)

    def dhclient_hook_path(self, name):
        return "%s/tunnelgate-dns-%s" % (self.dhclient_hooks_dir, name)

    def nm_dropin_path(self, name):
        return "%s/90-tunnelgate-dns-%s.conf" % (self.nm_conf_dir, name)

    # -- reads --
    def read(self, absolute):
        return read_text(self.path(absolute))

    def readlink(self, absolute):
        full = self.path(absolute)
        return os.readlink(full) if os.path.islink(full) else None

    def isdir(self, absolute):
        return os.path.isdir(self.path(absolute))

    def exists(self, absolute):
        return os.path.exists(self.path(absolute))

    # -- writes (apply only) --
    def write(self, absolute, content, mode=0o644, module=None):
        full = self.path(absolute)
        directory = os.path.dirname(full)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        write_file_atomic(full, content, mode, module)

    def write_in_place(self, absolute, content):
        """Rewrite a file without renaming over it (a bind mount); a symlink is replaced by a file."""
        full = self.path(absolute)
        if os.path.islink(full):
            os.unlink(full)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(full, flags, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)

    def symlink(self, absolute, target):
        full = self.path(absolute)
        if os.path.lexists(full):
            os.unlink(full)
        os.symlink(target, full)

    def remove(self, absolute):
        full = self.path(absolute)
        if os.path.lexists(full):
            os.unlink(full)


# ---------------------------------------------------------------------------------------------
# desired state
# ---------------------------------------------------------------------------------------------

class DnsConfig:
    """What the interface wants: its name, servers, search domains and the method."""

    def __init__(self, name, servers=(), domains=(), method="resolv_conf"):
        self.name = name
        self.servers = list(servers)
        self.domains = list(domains)
        self.method = method

    @property
    def wanted(self):
        return bool(self.servers)


def parse_entries(entries, option="dns"):
    """Split the ``dns`` option into (servers, search domains); raise TunnelgateError naming ``option``."""
    servers, domains = [], []
    for entry in entries or []:
        text = str(entry).strip()
        try:
            servers.append(str(ipaddress.ip_address(text)))
            continue
        except ValueError:
            pass
        if not DOMAIN_RE.match(text):
            raise TunnelgateError(option, "%r is neither an IP address nor a search domain" % (entry,))
        domains.append(text)
    if domains and not servers:
        raise TunnelgateError(option, "search domains (%s) need at least one server address" % ", ".join(domains))
    for value in servers + domains:
        if (servers + domains).count(value) > 1:
            raise TunnelgateError(option, "%s is listed twice" % value)
    return servers, domains


def marker(host, name):
    """The first line of a resolv.conf written by us (the role script's line, so its hosts are adopted)."""
    return "# tunnelgate: DNS through %s (the previous file is kept in %s)" % (name, host.saved_path(name))


def _marker_text(host, name):
    # wg-quick cuts a hook line at "#": the hooks look for the marker without it
    return marker(host, name)[2:]


def render_resolv_conf(host, config):
    lines = [marker(host, config.name)]
    lines += ["nameserver %s" % server for server in config.servers]
    if config.domains:
        lines.append("search %s" % " ".join(config.domains))
    return "\n".join(lines) + "\n"


def render_dhclient_hook(host, name):
    text = _marker_text(host, name)
    return (
        "# Ansible managed: tunnelgate.wireguard (DNS through %s); removed with the interface.\n"
        "# While /etc/resolv.conf holds the tunnel's resolvers, a lease renewal must not replace them\n"
        "# (that would break DNS with the kill switch closed, or leak it with the switch open).\n"
        "if grep -qsF %s %s; then\n"
        "    make_resolv_conf() { :; }\n"
        "fi\n" % (name, shlex.quote(text), host.resolv_conf)
    )


def _dhcpcd_block_edges(name):
    return "# BEGIN tunnelgate.wireguard DNS through %s" % name, "# END tunnelgate.wireguard DNS through %s" % name


def render_dhcpcd_block(host, name):
    begin, end = _dhcpcd_block_edges(name)
    return "%s\nif grep -qsF %s %s; then skip_hooks=\"${skip_hooks} resolv.conf\"; fi\n%s\n" % (
        begin, shlex.quote(_marker_text(host, name)), host.resolv_conf, end)


def dhcpcd_hook_text(current, host, name, present):
    """/etc/dhcpcd.enter-hook with our block added or replaced (present) or taken out; the rest is kept."""
    begin, end = _dhcpcd_block_edges(name)
    block = render_dhcpcd_block(host, name) if present else ""
    out, inside, placed = [], False, False
    for line in (current or "").splitlines(True):
        if line.rstrip("\n") == begin:
            inside = True
            continue
        if inside:
            if line.rstrip("\n") == end:
                inside, placed = False, True
                out.append(block)
            continue
        out.append(line)
    text = "".join(out)
    if present and not placed:
        if text and not text.endswith("\n"):
            text += "\n"
        text += block
    return text if text else None


def render_nm_dropin(name):
    return (
        "# Ansible managed: tunnelgate.wireguard (DNS through %s); removed with the interface.\n"
        "# NetworkManager leaves /etc/resolv.conf alone while the tunnel's resolvers are in use.\n"
        "[main]\ndns=none\nrc-manager=unmanaged\n" % name
    )


def hooks(host, config):
    """wg-quick (key, value) lines that re-apply ``config`` whenever the tunnel comes up.

    No ``#`` and no ``%`` in any line (wg-quick cuts comments and substitutes %i).
    """
    if not config.wanted:
        return []
    name = shlex.quote(config.name)
    if config.method == "resolved":
        return [
            ("PostUp", "resolvectl dns %s %s" % (name, " ".join(config.servers))),
            ("PostUp", "resolvectl domain %s %s" % (name, " ".join(shlex.quote(d) for d in ["~."] + config.domains))),
            ("PostUp", "resolvectl default-route %s yes" % name),
        ]
    text = shlex.quote(_marker_text(host, config.name))
    resolv, saved, ours = host.resolv_conf, host.saved_path(config.name), host.ours_path(config.name)
    return [
        # nothing to put in place before the module wrote our file (a first start): never an empty resolv.conf
        ("PostUp", "! [ -s %s ] || { grep -qsF %s %s || cat %s > %s; cat %s > %s; }" % (
            ours, text, resolv, resolv, saved, ours, resolv)),
        ("PostDown", "[ -s %s ] && grep -qsF %s %s && cat %s > %s || true" % (saved, text, resolv, saved, resolv)),
    ]


def hooks_method(config_text):
    """Which method the DNS hooks of a wg-quick file (ours) use, or None."""
    for line in (config_text or "").splitlines():
        key, _sep, value = line.partition("=")
        if key.strip().lower() != "postup":
            continue
        value = value.strip()
        if value.startswith("resolvectl dns "):
            return "resolved"
        if value.startswith("! [ -s ") and "tunnelgate: DNS through" in value:
            return "resolv_conf"
    return None


# ---------------------------------------------------------------------------------------------
# live state
# ---------------------------------------------------------------------------------------------

def _nameservers(text):
    return [line.split()[1] for line in (text or "").splitlines()
            if line.strip().startswith("nameserver") and len(line.split()) > 1]


def resolved_active(runner):
    if not runner.bin_path("resolvectl", required=False) or not runner.bin_path("systemctl", required=False):
        return False
    _rc, out, _err = runner.run(["systemctl", "is-active", "systemd-resolved.service"], check=False)
    return out.strip() == "active"


def detect_method(requested, runner, host, option="dns_method"):
    """``resolved`` when systemd-resolved runs and /etc/resolv.conf points at it, else ``resolv_conf``."""
    if requested not in METHODS:
        raise TunnelgateError(option, "must be one of %s, got %r" % (", ".join(METHODS), requested))
    active = resolved_active(runner)
    if requested == "resolved" and not active:
        raise TunnelgateError(option, "resolved: systemd-resolved is not running on this host (use auto or resolv_conf)")
    if requested != "auto":
        return requested
    if not active:
        return "resolv_conf"
    target = host.readlink(host.resolv_conf) or ""
    if RESOLVED_RUN_DIR.strip("/") in target:
        return "resolved"
    servers = _nameservers(host.read(host.resolv_conf))
    if servers and all(s in RESOLVED_STUBS for s in servers):
        return "resolved"
    return "resolv_conf"


def _resolvectl_value(runner, what, name):
    rc, out, _err = runner.run(["resolvectl", what, name], check=False)
    if rc != 0:
        return None
    # "Link 7 (wg0): 10.66.0.1 fd66::1"
    return out.split(":", 1)[1].split() if ":" in out.split("\n", 1)[0] else []


def _server_text(token):
    """A server as resolvectl prints it (maybe with :port, %ifindex, #name) -> the address."""
    text = token.split("#", 1)[0]
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.split("%", 1)[0]


class LiveDns:
    def __init__(self, name):
        self.name = name
        self.resolv_text = None
        self.resolv_link = None
        self.files = {}           # absolute path -> text or None
        self.link_servers = None  # resolved: None = the link does not exist or resolved is not running
        self.link_domains = None
        self.link_default_route = None
        self.nm_active = False

    def ours(self, host):
        first = (self.resolv_text or "").split("\n", 1)[0]
        return first == marker(host, self.name)


def _managed_paths(host, name):
    return [host.saved_path(name), host.link_path(name), host.ours_path(name), host.dhclient_hook_path(name),
            host.nm_dropin_path(name), host.dhcpcd_enter_hook]


def read_live(runner, host, name, resolved=None):
    """What is in place for ``name`` now. ``resolved``: whether systemd-resolved runs (None = ask)."""
    live = LiveDns(name)
    live.resolv_text = host.read(host.resolv_conf)
    live.resolv_link = host.readlink(host.resolv_conf)
    for path in _managed_paths(host, name):
        live.files[path] = host.read(path)
    if resolved is None:
        resolved = resolved_active(runner)
    if resolved:
        servers = _resolvectl_value(runner, "dns", name)
        if servers is not None:
            live.link_servers = [_server_text(s) for s in servers]
            live.link_domains = _resolvectl_value(runner, "domain", name) or []
            value = _resolvectl_value(runner, "default-route", name)
            live.link_default_route = (value or [""])[0] == "yes"
    if host.isdir(host.nm_conf_dir) and runner.bin_path("systemctl", required=False):
        live.nm_active = runner.run(["systemctl", "is-active", "NetworkManager.service"], check=False)[1].strip() == "active"
    return live


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------

class DnsPlan:
    """What changes; ``apply`` carries it out. Everything in it is safe to show (no secrets)."""

    def __init__(self, name, method=None):
        self.name = name
        self.method = method
        self.save_original = None      # ("file", text) | ("link", target): keep what is replaced
        self.resolv_conf = None        # text to write into /etc/resolv.conf
        self.restore = None            # ("file", text) | ("link", target): give the previous DNS back
        self.files = {}                # absolute path -> text (write) or None (remove)
        self.resolvectl = []           # argv lists
        self.reload_nm = False
        self.changes = []
        self.tracker = DifferenceTracker()

    @property
    def changed(self):
        return bool(self.save_original or self.resolv_conf is not None or self.restore or self.files
                    or self.resolvectl or self.reload_nm)


def _set_file(plan, live, path, text):
    if live.files.get(path) != text:
        plan.files[path] = text


def _plan_give_back(plan, host, live, resolv_conf=True, resolved=True):
    """Undo what we made for this interface: resolv.conf back, guards and saved files gone, link reverted."""
    name = live.name
    if resolv_conf:
        link = (live.files.get(host.link_path(name)) or "").strip()
        saved = live.files.get(host.saved_path(name))
        if link and not live.ours(host) and live.resolv_link is None and live.resolv_text == saved:
            # the tunnel went down (PostDown gave the content back): the symlink itself comes back too
            plan.restore = ("link", link)
            plan.changes.append("give back /etc/resolv.conf (a symlink to %s)" % link)
        if live.ours(host):
            if link:
                plan.restore = ("link", link)
                plan.changes.append("give back /etc/resolv.conf (a symlink to %s)" % link)
            elif saved:
                plan.restore = ("file", saved)
                plan.changes.append("give back the previous /etc/resolv.conf")
            else:
                plan.changes.append("keep /etc/resolv.conf: no previous file was saved to give back")
            plan.tracker.add("resolv.conf", live.resolv_text, saved if not link else "-> %s" % link)
        for path in (host.saved_path(name), host.link_path(name), host.ours_path(name),
                     host.dhclient_hook_path(name), host.nm_dropin_path(name)):
            if live.files.get(path) is not None:
                plan.files[path] = None
                plan.changes.append("remove %s" % path)
        hook = live.files.get(host.dhcpcd_enter_hook)
        if hook is not None:
            after = dhcpcd_hook_text(hook, host, name, False)
            if after != hook:
                plan.files[host.dhcpcd_enter_hook] = after
                plan.changes.append("take the DNS guard of %s out of %s" % (name, host.dhcpcd_enter_hook))
        if live.files.get(host.nm_dropin_path(name)) is not None and live.nm_active:
            plan.reload_nm = True
    if resolved and live.link_servers:
        plan.resolvectl.append(["resolvectl", "revert", name])
        plan.changes.append("revert the DNS settings of link %s (systemd-resolved)" % name)
        plan.tracker.add("resolved link %s" % name, {"dns": live.link_servers, "domains": live.link_domains}, None)


def plan_present(config, host, live, previous_method=None):
    """The changes that make ``config`` true (servers wanted) or undo ours (no servers)."""
    plan = DnsPlan(config.name, config.method if config.wanted else None)
    name = config.name
    if not config.wanted:
        _plan_give_back(plan, host, live, resolv_conf=True, resolved=previous_method == "resolved")
        return plan
    if config.method == "resolved":
        # a switch from resolv_conf: give that back first
        _plan_give_back(plan, host, live, resolv_conf=True, resolved=False)
        want_domains = ["~."] + config.domains
        before = {"dns": live.link_servers, "domains": live.link_domains, "default_route": live.link_default_route}
        after = {"dns": config.servers, "domains": want_domains, "default_route": True}
        plan.tracker.add("resolved link %s" % name, before, after)
        if live.link_servers != config.servers:
            plan.resolvectl.append(["resolvectl", "dns", name] + config.servers)
        if sorted(live.link_domains or []) != sorted(want_domains):
            plan.resolvectl.append(["resolvectl", "domain", name] + want_domains)
        if live.link_default_route is not True:
            plan.resolvectl.append(["resolvectl", "default-route", name, "yes"])
        if plan.resolvectl:
            plan.changes.append("DNS of link %s: %s, routing domain ~. (systemd-resolved)"
                                % (name, " ".join(config.servers)))
        return plan
    if len(config.servers) > MAX_RESOLV_CONF_SERVERS:
        raise TunnelgateError("dns", "/etc/resolv.conf takes at most %d servers (glibc reads no more), got %d"
                              % (MAX_RESOLV_CONF_SERVERS, len(config.servers)))
    if previous_method == "resolved" and live.link_servers:
        plan.resolvectl.append(["resolvectl", "revert", name])
        plan.changes.append("revert the DNS settings of link %s (systemd-resolved)" % name)
    content = render_resolv_conf(host, config)
    if not live.ours(host):
        if live.resolv_link:
            plan.save_original = ("link", live.resolv_link)
        else:
            plan.save_original = ("file", live.resolv_text or "")
        plan.changes.append("keep the current /etc/resolv.conf to give it back later")
    if live.resolv_text != content or live.resolv_link:
        plan.resolv_conf = content
        plan.changes.append("/etc/resolv.conf: nameserver %s" % ", ".join(config.servers))
    plan.tracker.add("resolv.conf", live.resolv_text, content)
    _set_file(plan, live, host.ours_path(name), content)
    if host.isdir(host.dhclient_hooks_dir):
        _set_file(plan, live, host.dhclient_hook_path(name), render_dhclient_hook(host, name))
    if any(host.exists(path) for path in host.dhcpcd_run_hooks):
        current = live.files.get(host.dhcpcd_enter_hook)
        _set_file(plan, live, host.dhcpcd_enter_hook, dhcpcd_hook_text(current, host, name, True))
    if host.isdir(host.nm_conf_dir):
        _set_file(plan, live, host.nm_dropin_path(name), render_nm_dropin(name))
        plan.reload_nm = host.nm_dropin_path(name) in plan.files and live.nm_active
    for path in sorted(p for p in plan.files if p != host.ours_path(name)):
        plan.changes.append("write %s (keeps the DHCP client or NetworkManager off /etc/resolv.conf)" % path)
    return plan


def plan_absent(host, live):
    """Give the previous DNS back (the interface is being removed)."""
    plan = DnsPlan(live.name)
    _plan_give_back(plan, host, live)
    return plan


# ---------------------------------------------------------------------------------------------
# apply
# ---------------------------------------------------------------------------------------------

def apply(plan, runner, host, module=None):
    """Carry out ``plan``. Order: keep the original, write ours, then the guards; give back first."""
    name = plan.name
    if plan.save_original:
        kind, value = plan.save_original
        if kind == "link":
            host.write(host.link_path(name), value + "\n", 0o644, module)
            host.write(host.saved_path(name), host.read(host.resolv_conf) or "", 0o644, module)
        else:
            host.remove(host.link_path(name))
            host.write(host.saved_path(name), value, 0o644, module)
    if plan.restore:
        kind, value = plan.restore
        if kind == "link":
            host.symlink(host.resolv_conf, value)
        else:
            host.write_in_place(host.resolv_conf, value)
    for path, text in sorted(plan.files.items(), key=lambda item: item[1] is None):
        if text is None:
            host.remove(path)
        else:
            host.write(path, text, 0o644, module)
    if plan.resolv_conf is not None:
        host.write_in_place(host.resolv_conf, plan.resolv_conf)
    for argv in plan.resolvectl:
        runner.run(argv, check=argv[1] != "revert")
    if plan.reload_nm:
        runner.run(NM_RELOAD, check=False)


# ---------------------------------------------------------------------------------------------
# the interface module's side
# ---------------------------------------------------------------------------------------------

class InterfaceDns:
    """DNS of one interface for one module run: validated options, detected method, hooks, plan, apply.

    ``previous_config``: the interface's wg-quick file before this run (its DNS hooks tell which
    method an earlier run used, so a switch or ``dns: []`` gives that one back).
    """

    def __init__(self, name, entries, method, runner, host=None, previous_config=None):
        self.host = host or DnsHost()
        self.runner = runner
        servers, domains = parse_entries(entries, "dns")
        detected = detect_method(method or "auto", runner, self.host) if servers else None
        self.config = DnsConfig(name, servers, domains, detected)
        self.previous = hooks_method(previous_config)

    def hooks(self):
        return hooks(self.host, self.config)

    def plan(self):
        live = read_live(self.runner, self.host, self.config.name)
        return plan_present(self.config, self.host, live, self.previous)

    def apply(self, module=None):
        """Plan against the host as it is NOW (after the tunnel came up) and carry it out."""
        plan = self.plan()
        apply(plan, self.runner, self.host, module)
        return plan


def remove_interface_dns(name, runner, host=None, check_mode=False, module=None):
    """state=absent: give the previous DNS back. Returns the plan (changed, changes, diff)."""
    host = host or DnsHost()
    plan = plan_absent(host, read_live(runner, host, name))
    if not check_mode:
        apply(plan, runner, host, module)
    return plan


def diff_entry(plan):
    """A diff entry (before/after text) for the DNS part of a result."""
    before, after = plan.tracker.get_before_after()

    def show(data):
        lines = []
        for key in sorted(data):
            value = data[key]
            if isinstance(value, str):
                lines.append("%s:\n%s" % (key, "".join("  " + line + "\n" for line in value.splitlines())))
            else:
                lines.append("%s: %s\n" % (key, value))
        return "".join(lines)

    return {"before_header": "DNS (%s)" % plan.name, "after_header": "DNS (%s)" % plan.name,
            "before": show(before), "after": show(after)}
