"""Check the build context `ansible-builder create` made from examples/ee/execution-environment.yml.

Run by `scripts/test.sh build`: every collection the EE's requirements.yml installs from a file must be in
the context at the path ansible-galaxy will look for it (the image build runs in /build, a copy of _build),
and the image build must install the galaxy requirements.
"""

import os
import sys

import yaml


def main():
    context = sys.argv[1]
    build = os.path.join(context, "_build")
    with open(os.path.join(build, "requirements.yml"), encoding="utf-8") as handle:
        requirements = yaml.safe_load(handle)
    files = [entry["name"] for entry in requirements["collections"] if entry.get("type") == "file"]
    assert files, "the example EE installs no collection from a file"
    for name in files:
        assert os.path.isfile(os.path.join(build, name)), "%s is not in the EE build context" % name
    containerfile = next(os.path.join(context, f) for f in ("Containerfile", "Dockerfile")
                         if os.path.exists(os.path.join(context, f)))
    with open(containerfile, encoding="utf-8") as handle:
        text = handle.read()
    assert "ansible-galaxy collection install" in text and "WORKDIR /build" in text, containerfile
    print("EE build context: %s holds %s" % (context, ", ".join(files)))


if __name__ == "__main__":
    main()
