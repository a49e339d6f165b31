# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue between the pure functions of ``_profiles`` and Jinja2 filters. Private."""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import InventoryError


def as_filter(func):
    """Run ``func``; an InventoryError (a user mistake) becomes an AnsibleFilterError with its message."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InventoryError as err:
            raise AnsibleFilterError(str(err)) from None

    return wrapper
