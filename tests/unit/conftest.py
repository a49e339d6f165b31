"""Make this checkout importable as ansible_collections.tunnelgate.wireguard for unit tests."""

import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def collection_root():
    """The directory that holds ansible_collections/tunnelgate/wireguard (made if needed)."""
    # Inside ansible-test the checkout already sits at .../ansible_collections/tunnelgate/wireguard.
    parts = ROOT.split(os.sep)
    if parts[-3:-1] == ["ansible_collections", "tunnelgate"] and parts[-1] == "wireguard":
        return os.sep.join(parts[:-3])
    base = os.path.join(ROOT, ".cache", "collections")
    link_parent = os.path.join(base, "ansible_collections", "tunnelgate")
    os.makedirs(link_parent, exist_ok=True)
    link = os.path.join(link_parent, "wireguard")
    if not os.path.islink(link):
        os.symlink(ROOT, link)
    return base


sys.path.insert(0, collection_root())


@pytest.fixture(autouse=True)
def dns_files_in_tmp(tmp_path_factory, monkeypatch):
    """Code that touches the host's DNS files (/etc/resolv.conf ...) sees a temporary root in unit tests."""
    from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _dns

    root = tmp_path_factory.mktemp("dns-root")
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "resolv.conf").write_text("nameserver 192.0.2.53\n")
    monkeypatch.setattr(_dns.DnsHost.__init__, "__defaults__", (str(root),))
    return root
