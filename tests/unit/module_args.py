# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``patch_module_args`` for module tests: ansible-core's own (2.19+), or the classic fallback."""

from __future__ import annotations

import contextlib
import json

__all__ = ["patch_module_args"]

try:
    from ansible.module_utils.testing import patch_module_args  # ansible-core >= 2.19
except ImportError:  # pragma: no cover - older ansible-core
    from unittest import mock

    from ansible.module_utils import basic

    @contextlib.contextmanager
    def patch_module_args(args=None):
        data = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", data):
            yield
