# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter plugins: each registers its name and turns user mistakes into AnsibleFilterError."""

from __future__ import annotations

import base64
import importlib

import pytest
import yaml
from ansible.errors import AnsibleFilterError

FILTERS = ["validate_profiles", "profile_for_host", "allocate_addresses", "server_plan", "client_plan",
           "cidr_overlaps", "host_networks", "valid_wireguard_key", "docker_gateway_plan", "docker_gateway_exposure"]


def load(name):
    module = importlib.import_module("ansible_collections.tunnelgate.wireguard.plugins.filter.%s" % name)
    return module, module.FilterModule().filters()[name]


@pytest.mark.parametrize("name", FILTERS)
def test_filter_registered_and_documented(name):
    module, func = load(name)
    assert callable(func)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["name"] == name
    assert "_input" in doc["options"]
    positional = [x.strip() for x in doc.get("positional", "_input").split(",")]
    assert set(positional) <= set(doc["options"])
    assert yaml.safe_load(module.RETURN)["_value"]["type"]
    assert module.EXAMPLES.strip()


def test_error_becomes_ansible_filter_error_with_variable_and_host():
    _module, profile_for_host = load("profile_for_host")
    with pytest.raises(AnsibleFilterError, match=r"^tunnelgate_profile \(host web1\): 'nope' is not a profile"):
        profile_for_host({"a": {"server": "s", "network": "10.66.0.0/24"}}, "web1", "nope")


def test_allocate_through_filter():
    _module, allocate = load("allocate_addresses")
    out = allocate("10.66.0.0/24", ["c1", "c2"], "10.66.0.1/24", {"c2": ["10.66.0.9/32"]})
    assert out == {"c1": ["10.66.0.2/32"], "c2": ["10.66.0.9/32"]}


def test_valid_wireguard_key_through_filter():
    _module, check = load("valid_wireguard_key")
    assert check(base64.b64encode(bytes(32)).decode()) is True
    assert check("not-a-key") is False


def test_cidr_overlaps_through_filter():
    _module, overlaps = load("cidr_overlaps")
    assert overlaps(["10.66.0.0/24"], ["10.66.0.0/16"]) == [["10.66.0.0/24", "10.66.0.0/16"]]
    with pytest.raises(AnsibleFilterError, match="not a valid IPv4/IPv6 CIDR"):
        overlaps(["nope"], ["10.0.0.0/8"])
