# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the interface package's tests: ``host``, a fake host's file system under tmp_path."""

from __future__ import annotations

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.apply import Host

from .fakes import OTHER_PRIVATE_B64, PRIVATE_B64, PSK_B64


@pytest.fixture
def host(tmp_path):
    (tmp_path / "etc").mkdir()
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "wg0.key").write_text(PRIVATE_B64 + "\n")
    (keys / "other.key").write_text(OTHER_PRIVATE_B64 + "\n")
    (keys / "a.psk").write_text(PSK_B64 + "\n")
    proc = tmp_path / "proc" / "net" / "ipv4" / "conf" / "all"
    proc.mkdir(parents=True)
    (proc / "src_valid_mark").write_text("1\n")
    return Host(config_dir=str(tmp_path / "etc"), systemd_dir=str(tmp_path / "systemd"),
                proc_sys=str(tmp_path / "proc"), systemd=False)
