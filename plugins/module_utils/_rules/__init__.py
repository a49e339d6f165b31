# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one rules engine: every firewall rule the collection installs goes through this package.

Private to the collection (leading underscore): not a public API.

``model``     the backend-neutral rule dicts, chains and rule sets, shared input checks
``iptables``  iptables / ip6tables (iptables-nft and iptables-legacy): parse, render, plan per table
``nftables``  nftables: parse ``nft -j``, render ``nft -f`` files, plan for one table
``persist``   boot persistence: rule files and a systemd unit ordered before network-pre.target
``engine``    decide, then act: live vs desired for one rule set, diff, apply, the other backend's cleanup
"""
