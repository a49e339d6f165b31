# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``interface`` and ``info`` modules' logic, by responsibility (private to the collection).

Decide, then act:

* ``base``    - constants and the shapes both sides share: ``State``, ``PeerState``, ``Route``, ``Rule``
* ``desired`` - the module options validated into a desired ``State`` (routes/rules derived)
* ``render``  - the wg-quick file and the systemd drop-in for a desired ``State``
* ``live``    - the running interface read into a ``State`` (``wg show dump``, ``ip -j``)
* ``plan``    - desired vs live: a ``Plan`` and its ``DifferenceTracker`` (the diff)
* ``apply``   - ``Host`` and ``Applier``: the only code that changes the host; restore on failure
* ``module``  - ``run_interface``: the whole run, check mode, diff, state=absent
* ``info``    - ``wireguard_info`` for the info module

Design choices (documented in the module's notes):

* The wg-quick file always says ``Table = off``; routes, policy rules and the one sysctl a full
  tunnel needs are rendered as PostUp/PostDown hooks. wg-quick's own full-tunnel code writes
  ``net.ipv4.conf.all.src_valid_mark=1`` unconditionally, and that write fails where
  ``/proc/sys`` is read-only (containers) even when the value is already 1. Our hook writes it
  only when it differs, and the routes/rules are the same ones wg-quick would create.
* The private key (and any preshared key) is loaded by ``wg set ... private-key PATH`` hooks, so
  neither the file nor Ansible ever holds key material.
* Live changes use ``wg set`` (peers, key, port, fwmark) and ``ip`` (addresses, MTU, routes,
  rules): the tunnel is never restarted for them.

Runs on the managed host: standard library only (``ipaddress``).
"""
