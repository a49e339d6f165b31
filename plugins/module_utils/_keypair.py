# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WireGuard key file lifecycle behind the ``keypair`` module.

Decide, then act: ``inspect_key_file`` and ``inspect_directory`` read the host,
``plan_keypair`` is a pure function that decides what must change, ``apply_plan`` is the
only step that writes (skipped in check mode), and ``run_keypair`` ties them to an
AnsibleModule. Key material never leaves this module: results and diffs carry the public
key and fingerprints only.

Private to the collection (leading underscore): not a public API.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import (
    TunnelgateError,
    write_file_atomic,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._x25519 import (
    KEY_SIZE,
    clamp_scalar,
    generate_private_key,
    public_key,
)

TYPE_PRIVATE = "private"
TYPE_PRESHARED = "preshared"
KEY_TYPES = (TYPE_PRIVATE, TYPE_PRESHARED)

REGENERATE_NEVER = "never"
REGENERATE_FAIL = "fail"
REGENERATE_ALWAYS = "always"
REGENERATE_CHOICES = (REGENERATE_NEVER, REGENERATE_FAIL, REGENERATE_ALWAYS)

STATE_PRESENT = "present"
STATE_ABSENT = "absent"

# What the plan decides for the key file itself.
ACTION_CREATE = "create"
ACTION_KEEP = "keep"
ACTION_REGENERATE = "regenerate"
ACTION_REMOVE = "remove"
ACTION_NONE = "none"  # state=absent and there is no file
KEY_CHANGING_ACTIONS = (ACTION_CREATE, ACTION_REGENERATE, ACTION_REMOVE)

# Status of the file found at ``path``.
FILE_MISSING = "missing"
FILE_VALID = "valid"
FILE_INVALID = "invalid"

KEY_B64_LEN = 44  # base64 of 32 bytes, with one '=' of padding
MAX_KEY_FILE_SIZE = 4096  # a key file is 45 bytes; never read more than this
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
FINGERPRINT_HEX_CHARS = 16
PRESHARED_FINGERPRINT_DOMAIN = b"tunnelgate.wireguard preshared-key fingerprint v1\x00"

# Shown in a check-mode diff where the new key does not exist yet.
PENDING_FINGERPRINT = "(new key, generated on apply)"


def decode_key(data):
    """Return the 32 raw bytes of a WireGuard key file's content, or raise ValueError.

    A key file holds the key in canonical base64 (44 characters), as ``wg genkey`` writes it,
    usually followed by a newline; surrounding whitespace is accepted. The error messages
    describe the problem without ever echoing the content.
    """
    if len(data) > MAX_KEY_FILE_SIZE:
        raise ValueError("the file is larger than %d bytes" % MAX_KEY_FILE_SIZE)
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError("the file is not ASCII text") from None
    if not text:
        raise ValueError("the file is empty")
    if len(text) != KEY_B64_LEN:
        raise ValueError("expected %d base64 characters, found %d characters" % (KEY_B64_LEN, len(text)))
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the content is not valid base64") from None
    if len(raw) != KEY_SIZE:
        raise ValueError("the content does not decode to %d bytes" % KEY_SIZE)
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("the content is not canonical base64")
    return raw


def encode_key(raw):
    """Return the key file content for 32 raw key bytes: base64 and a newline (as ``wg genkey``)."""
    if len(raw) != KEY_SIZE:
        raise ValueError("a key is %d bytes" % KEY_SIZE)
    return base64.b64encode(raw).decode("ascii") + "\n"


def is_clamped(raw):
    """True when ``raw`` is a private key clamped as RFC 7748 / ``wg genkey`` does."""
    return clamp_scalar(raw) == bytes(raw)


def public_key_b64(raw_private):
    """Return the base64 public key of a raw private key (what ``wg pubkey`` prints)."""
    return base64.b64encode(public_key(raw_private)).decode("ascii")


def fingerprint(raw, key_type):
    """Return a short, non-secret fingerprint of a key.

    Private keys: the first 16 hex characters of SHA-256 over the raw 32-byte PUBLIC key, so
    the fingerprint identifies the key pair and can be computed by anyone holding the public
    key. Preshared keys have no public half: their fingerprint is the first 16 hex characters
    of SHA-256 over a fixed domain-separation prefix and the key. It reveals nothing usable
    about the key (a 64-bit truncated one-way hash of 256 random bits) and cannot be matched
    against plain SHA-256 sums of the key made elsewhere.
    """
    if key_type == TYPE_PRIVATE:
        digest = hashlib.sha256(public_key(raw)).hexdigest()
    elif key_type == TYPE_PRESHARED:
        digest = hashlib.sha256(PRESHARED_FINGERPRINT_DOMAIN + bytes(raw)).hexdigest()
    else:
        raise ValueError("unknown key type %r" % (key_type,))
    return digest[:FINGERPRINT_HEX_CHARS]


class KeyFile:
    """What is at the key path: missing, a valid key (raw bytes kept in memory only), or not a key."""

    __slots__ = ("path", "status", "key", "reason")

    def __init__(self, path, status, key=None, reason=None):
        self.path = path
        self.status = status
        self.key = key
        self.reason = reason

    def __repr__(self):
        # Never include the key bytes in a representation (tracebacks, test output).
        return "KeyFile(path=%r, status=%r, reason=%r)" % (self.path, self.status, self.reason)

    def describe(self, key_type):
        """Non-secret facts about this key: fingerprint, and public key for private keys."""
        if self.status != FILE_VALID:
            return {"fingerprint": None, "public_key": None}
        info = {"fingerprint": fingerprint(self.key, key_type), "public_key": None}
        if key_type == TYPE_PRIVATE:
            info["public_key"] = public_key_b64(self.key)
        return info


def inspect_key_file(path):
    """Read ``path`` and classify it. Raises TunnelgateError when it is not a file we can read."""
    if os.path.isdir(path):
        raise TunnelgateError("path", "%s is a directory; path must name the key file itself" % path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_SIZE + 1)
    except FileNotFoundError:
        return KeyFile(path, FILE_MISSING)
    except NotADirectoryError:
        raise TunnelgateError("path", "a parent of %s is not a directory" % path) from None
    except OSError as err:
        raise TunnelgateError("path", "cannot read %s: %s" % (path, err.strerror)) from None
    try:
        return KeyFile(path, FILE_VALID, key=decode_key(data))
    except ValueError as err:
        return KeyFile(path, FILE_INVALID, reason=str(err))


class DirectoryState:
    """The key's directory: which ancestors are missing, and the mode of the nearest existing one."""

    __slots__ = ("path", "missing", "existing_mode")

    def __init__(self, path, missing, existing_mode):
        self.path = path
        self.missing = list(missing)  # outermost first, so they can be created in order
        self.existing_mode = existing_mode  # st_mode of the key's directory when it exists


def inspect_directory(path):
    """Return the DirectoryState of the directory that holds ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    missing = []
    current = directory
    while not os.path.isdir(current):
        if os.path.lexists(current):
            raise TunnelgateError("path", "%s is not a directory, so %s cannot be created" % (current, path))
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    missing.reverse()
    existing_mode = None if missing else os.stat(directory).st_mode
    return DirectoryState(directory, missing, existing_mode)


class KeyPlan:
    """What must change. Pure data: built by ``plan_keypair``, executed by ``apply_plan``."""

    __slots__ = ("path", "key_type", "state", "action", "current", "create_directories", "warnings")

    def __init__(self, path, key_type, state, action, current, create_directories=(), warnings=()):
        self.path = path
        self.key_type = key_type
        self.state = state
        self.action = action
        self.current = current
        self.create_directories = list(create_directories)
        self.warnings = list(warnings)

    @property
    def changes_key(self):
        return self.action in KEY_CHANGING_ACTIONS

    @property
    def changed(self):
        return self.changes_key or bool(self.create_directories)

    def diff(self, after=None):
        """The diff for this plan: fingerprints and states only, never key material.

        ``after`` is the KeyFile after apply; without it (check mode) a created or regenerated
        key shows as pending.
        """
        before_info = _diff_side(self.current, self.key_type)
        if self.action in (ACTION_KEEP, ACTION_NONE):
            after_info = dict(before_info)
        elif self.action == ACTION_REMOVE:
            after_info = {"state": "absent", "fingerprint": None}
        elif after is not None:
            after_info = _diff_side(after, self.key_type)
        else:
            after_info = {"state": "present", "fingerprint": PENDING_FINGERPRINT}
        if self.create_directories:
            before_info["directories_created"] = []
            after_info["directories_created"] = list(self.create_directories)
        return {
            "before_header": self.path,
            "after_header": self.path,
            "before": before_info,
            "after": after_info,
        }


def _diff_side(key_file, key_type):
    if key_file.status == FILE_MISSING:
        return {"state": "absent", "fingerprint": None}
    if key_file.status == FILE_INVALID:
        return {"state": "present", "fingerprint": "(not a valid key: %s)" % key_file.reason}
    return {"state": "present", "fingerprint": key_file.describe(key_type)["fingerprint"]}


def _invalid_key_error(current, detail):
    return TunnelgateError(
        "regenerate",
        "%s; it is never overwritten silently. Fix or remove the file, or set regenerate: always to replace it"
        % detail,
        item=current.path,
    )


def plan_keypair(key_type, state, regenerate, current, directory):
    """Decide what must change for the key at ``current.path``. Pure: reads and writes nothing.

    ``current`` is the KeyFile found at the path, ``directory`` its DirectoryState.
    Raises TunnelgateError when the existing file may not be touched under ``regenerate``.
    """
    if key_type not in KEY_TYPES:
        raise TunnelgateError("type", "must be one of %s, got %r" % (", ".join(KEY_TYPES), key_type))
    if regenerate not in REGENERATE_CHOICES:
        raise TunnelgateError(
            "regenerate", "must be one of %s, got %r" % (", ".join(REGENERATE_CHOICES), regenerate)
        )
    if state not in (STATE_PRESENT, STATE_ABSENT):
        raise TunnelgateError("state", "must be present or absent, got %r" % (state,))

    path = current.path
    if state == STATE_ABSENT:
        action = ACTION_NONE if current.status == FILE_MISSING else ACTION_REMOVE
        return KeyPlan(path, key_type, state, action, current)

    warnings = []
    if directory.existing_mode is not None and _writable_by_others(directory.existing_mode):
        warnings.append(
            "the directory %s is writable by group or others, who could replace the key file; "
            "keep WireGuard keys in a 0700 directory" % directory.path
        )

    if current.status == FILE_MISSING:
        action = ACTION_CREATE
    elif regenerate == REGENERATE_ALWAYS:
        action = ACTION_REGENERATE
    elif current.status == FILE_INVALID:
        raise _invalid_key_error(current, "the existing file is not a valid WireGuard key (%s)" % current.reason)
    elif regenerate == REGENERATE_FAIL and key_type == TYPE_PRIVATE and not is_clamped(current.key):
        raise _invalid_key_error(
            current,
            "the existing key is not a clamped X25519 private key as wg genkey makes them "
            "(is it a preshared key?); regenerate: never would keep it",
        )
    else:
        action = ACTION_KEEP
    return KeyPlan(path, key_type, state, action, current, directory.missing, warnings)


def _writable_by_others(mode):
    """Group/other-writable without the sticky bit: others could rename a file over the key."""
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH)) and not mode & stat.S_ISVTX


@contextlib.contextmanager
def _private_umask():
    """Files and directories created inside are never group/other accessible, not for an instant."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def apply_plan(plan, module=None, urandom=os.urandom):
    """Carry out ``plan``; return the KeyFile after the change. Never called in check mode.

    ``module`` (an AnsibleModule) is used for the atomic rename, so SELinux contexts are kept.
    """
    if plan.action == ACTION_REMOVE:
        try:
            os.unlink(plan.path)
        except FileNotFoundError:
            pass
        return KeyFile(plan.path, FILE_MISSING)
    if plan.action in (ACTION_KEEP, ACTION_NONE):
        _create_directories(plan.create_directories)
        return plan.current

    _create_directories(plan.create_directories)
    if plan.key_type == TYPE_PRIVATE:
        raw = generate_private_key(urandom)
    else:
        raw = urandom(KEY_SIZE)
    if len(raw) != KEY_SIZE:
        raise RuntimeError("the random source returned %d bytes instead of %d" % (len(raw), KEY_SIZE))
    # write_file_atomic keeps the key private throughout (umask 077, a replaced file tightened first)
    write_file_atomic(plan.path, encode_key(raw), mode=FILE_MODE, module=module)
    return KeyFile(plan.path, FILE_VALID, key=raw)


def _create_directories(directories):
    with _private_umask():
        for directory in directories:
            try:
                os.mkdir(directory, DIRECTORY_MODE)
            except FileExistsError:
                if not os.path.isdir(directory):
                    raise TunnelgateError("path", "%s exists and is not a directory" % directory) from None
                continue
            os.chmod(directory, DIRECTORY_MODE)


def run_keypair(module):
    """Run the keypair module: inspect, plan, apply (unless check mode), report.

    Returns the result dict for ``exit_json``; raises TunnelgateError for the user to fix.
    The result holds the public key and fingerprint only, never key material.
    """
    params = module.params
    if not params["path"].isprintable():
        raise TunnelgateError("path", "%r contains control characters or line separators; a key file's path must be "
                              "printable text" % (params["path"],))
    path = os.path.abspath(os.path.expanduser(params["path"]))
    key_type = params["type"]

    current = inspect_key_file(path)
    if params["state"] == STATE_PRESENT:
        directory = inspect_directory(path)
    else:
        directory = DirectoryState(os.path.dirname(path), [], None)
    plan = plan_keypair(key_type, params["state"], params["regenerate"], current, directory)
    for warning in plan.warnings:
        module.warn(warning)

    after = None
    if not module.check_mode:
        after = apply_plan(plan, module=module)
        for created in plan.create_directories:
            # New directories belong to the key's owner/group so that owner can reach the key.
            module.set_owner_if_different(created, params.get("owner"), False)
            module.set_group_if_different(created, params.get("group"), False)

    diff = plan.diff(after)
    changed = plan.changed
    if params["state"] == STATE_PRESENT and (after is not None or current.status == FILE_VALID):
        file_args = module.load_file_common_arguments(params, path=path)
        changed = module.set_fs_attributes_if_different(file_args, changed, diff=diff)

    if after is not None:
        facts = after.describe(key_type)
    elif plan.action == ACTION_KEEP:
        facts = current.describe(key_type)
    else:
        # Check mode and the key would be created, regenerated or removed: nothing to report yet.
        facts = {"fingerprint": None, "public_key": None}

    result = {
        "changed": changed,
        "path": path,
        "type": key_type,
        # AnsibleModule.exit_json adds the file's stat (state=file, mode, owner, ...) when it exists.
        "state": "file" if os.path.lexists(path) else "absent",
        "action": plan.action,
        "fingerprint": facts["fingerprint"],
        "diff": diff,
    }
    if key_type == TYPE_PRIVATE:
        result["public_key"] = facts["public_key"]
    return result
