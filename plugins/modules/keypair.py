#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: keypair
short_description: Generate a WireGuard private or preshared key on the managed host
version_added: 0.1.0
description:
  - Generates a WireGuard private key (X25519, clamped as C(wg genkey) does) or a preshared key
    on the managed host and stores it base64-encoded in O(path), mode V(0600) by default.
  - The key is generated from C(os.urandom) on the managed host and never leaves it. The module
    returns the public key (for O(type=private)) and a short fingerprint, never key material,
    not in its result, its diff or its messages.
  - The public key is derived in pure Python (RFC 7748), so the managed host needs neither the
    C(wg) binary nor the C(cryptography) library.
  - Missing directories of O(path) are created with mode V(0700) and the O(owner) and O(group)
    of the key. Existing directories are never changed; the module warns when the key's
    directory is writable by group or others.
  - An existing file that is not a valid WireGuard key makes the module fail (naming the path);
    it is replaced only with O(regenerate=always).
author:
  - tunnelgate maintainers (@tunnelgate)
extends_documentation_fragment:
  - tunnelgate.wireguard.common
  - ansible.builtin.files
options:
  path:
    description:
      - Path of the key file. Its directory is created (mode V(0700)) when it is missing.
    type: path
    required: true
  type:
    description:
      - V(private) is an X25519 private key whose public key the module returns.
      - V(preshared) is 32 random bytes, for a peer's C(PresharedKey). Nothing derived from it is
        returned except its fingerprint.
    type: str
    choices: [private, preshared]
    default: private
  state:
    description:
      - V(present) makes sure a valid key exists at O(path).
      - V(absent) removes the key file (whatever it contains). Directories are left in place.
    type: str
    choices: [present, absent]
    default: present
  regenerate:
    description:
      - When to replace an existing key file.
      - V(never) keeps an existing valid key and fails when the file is not a valid key.
      - V(fail) is like V(never) and also fails when the existing key does not fit O(type). With
        O(type=private), the key must be clamped as C(wg genkey) makes it (a preshared key
        usually is not).
      - V(always) generates a new key on every run, replacing whatever is at O(path). Use it for
        key rotation; the task then always reports a change.
      - A missing key file is always created.
    type: str
    choices: [never, fail, always]
    default: never
  mode:
    description:
      - The permissions of the key file, as for M(ansible.builtin.file).
      - Defaults to V(0600). A key file must never be readable by others; C(wg-quick) warns about
        such files.
    type: raw
    default: '0600'
notes:
  - The private key is written atomically with mode V(0600) from its first byte (the umask is
    tightened while writing), then O(mode), O(owner) and O(group) are applied.
  - The fingerprint of a private key is the first 16 hex characters of the SHA-256 of the raw
    32-byte public key, so anyone with the public key can compute it. The fingerprint of a
    preshared key is the first 16 hex characters of a domain-separated SHA-256 of the key; it
    identifies the key without revealing anything usable about it.
  - In check mode, the public key and fingerprint are returned for a key that would be kept;
    they are V(null) when the key would be created or regenerated.
  - The pure-Python X25519 is not constant-time; it runs once per task on the host that owns
    the key and is never exposed to other parties.
seealso:
  - name: RFC 7748, Elliptic Curves for Security (X25519)
    description: The key agreement function whose public keys WireGuard uses.
    link: https://www.rfc-editor.org/rfc/rfc7748
  - name: wg(8)
    description: C(wg genkey), C(wg pubkey) and C(wg genpsk) make the same keys by hand.
    link: https://git.zx2c4.com/wireguard-tools/about/src/man/wg.8
"""

EXAMPLES = r"""
- name: Make sure the host has a WireGuard private key
  tunnelgate.wireguard.keypair:
    path: /etc/wireguard/wg0.key
  register: wg0_key

- name: Show the public key (safe to share)
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} {{ wg0_key.public_key }} ({{ wg0_key.fingerprint }})"

- name: A preshared key for one peer, readable by the systemd-network group
  tunnelgate.wireguard.keypair:
    path: /etc/wireguard/psk/laptop.psk
    type: preshared
    group: systemd-network
    mode: '0640'

- name: Rotate the private key
  tunnelgate.wireguard.keypair:
    path: /etc/wireguard/wg0.key
    regenerate: always

- name: Remove a key that is no longer used
  tunnelgate.wireguard.keypair:
    path: /etc/wireguard/old.key
    state: absent
"""

RETURN = r"""
path:
  description: Absolute path of the key file.
  returned: always
  type: str
  sample: /etc/wireguard/wg0.key
type:
  description: The key type, as given in O(type).
  returned: always
  type: str
  sample: private
state:
  description:
    - V(file) when the key file exists after the task, V(absent) when it does not (in check mode,
      the state found on the host).
  returned: always
  type: str
  sample: file
mode:
  description: The key file's permissions, as M(ansible.builtin.file) reports them.
  returned: when the key file exists
  type: str
  sample: '0600'
owner:
  description: The key file's owner.
  returned: when the key file exists
  type: str
  sample: root
group:
  description: The key file's group.
  returned: when the key file exists
  type: str
  sample: root
uid:
  description: The key file's owner as a number.
  returned: when the key file exists
  type: int
  sample: 0
gid:
  description: The key file's group as a number.
  returned: when the key file exists
  type: int
  sample: 0
size:
  description: The key file's size in bytes (45 for a key and its newline).
  returned: when the key file exists
  type: int
  sample: 45
action:
  description:
    - What the module did to the key file (or would do, in check mode).
    - V(create), V(keep), V(regenerate), V(remove), or V(none) (O(state=absent) and no file).
    - File attribute changes (mode, owner, group) are reported in RV(ignore:changed) and the diff.
  returned: always
  type: str
  sample: keep
public_key:
  description:
    - The base64 public key of the private key, as C(wg pubkey) prints it.
    - V(null) when O(state=absent), or in check mode when the key would be created or regenerated.
  returned: when O(type=private)
  type: str
  sample: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
fingerprint:
  description:
    - A short non-secret fingerprint of the key (16 hex characters); see the notes for its
      definition.
    - V(null) when O(state=absent), or in check mode when the key would be created or regenerated.
  returned: always
  type: str
  sample: 3c1e7a0f9b2d4c58
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._keypair import (
    KEY_TYPES,
    REGENERATE_CHOICES,
    run_keypair,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            type=dict(type="str", choices=list(KEY_TYPES), default="private"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            regenerate=dict(type="str", choices=list(REGENERATE_CHOICES), default="never"),
            mode=dict(type="raw", default="0600"),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    try:
        result = run_keypair(module)
    except TunnelgateError as err:
        module.fail_json(msg=str(err), path=module.params["path"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
