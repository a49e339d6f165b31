# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``FakeModule``: the few AnsibleModule members the rules engine and the kill switch use."""

from __future__ import annotations

import os

__all__ = ["FakeModule"]


class FakeModule:
    def __init__(self, params, check_mode=False, diff=True):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)

    def atomic_move(self, src, dst, unsafe_writes=False):
        os.replace(src, dst)
