"""Use the collection installed from the built tarball: docs load, and keypair creates a real key.

Run by `scripts/test.sh build` with ANSIBLE_COLLECTIONS_PATH pointing at the install location only.
"""

import json
import os
import subprocess
import sys
import tempfile


def main():
    installed = os.path.join(sys.argv[1], "ansible_collections", "tunnelgate", "wireguard")
    for name in ("keypair", "interface", "killswitch", "info"):
        if os.path.exists(os.path.join(installed, "plugins", "modules", name + ".py")):
            subprocess.run(["ansible-doc", "-t", "module", "tunnelgate.wireguard." + name],
                           check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        key_path = os.path.join(tmp, "keys", "private.key")
        env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
        proc = subprocess.run(
            ["ansible", "localhost", "-c", "local", "-m", "tunnelgate.wireguard.keypair", "-a", "path=" + key_path],
            check=True, capture_output=True, text=True, env=env,
        )
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
        with open(key_path, encoding="ascii") as handle:
            private = handle.read().strip()
        assert result["changed"] is True, result
        assert len(result["public_key"]) == 44, result
        assert private not in proc.stdout + proc.stderr, "private key printed"
        assert oct(os.stat(key_path).st_mode & 0o777) == "0o600"
        wg = subprocess.run(["wg", "pubkey"], input=private + "\n", capture_output=True, text=True, check=True)
        assert wg.stdout.strip() == result["public_key"], (wg.stdout, result["public_key"])
    print("build: tarball installs; keypair from the installed collection matches wg pubkey")


if __name__ == "__main__":
    main()
