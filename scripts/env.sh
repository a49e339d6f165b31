# shellcheck shell=bash
# For developers: `source scripts/env.sh` puts the venv and the collection path in this shell.
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PATH="$TG_VENV/bin:$TG_CACHE/bin:$PATH"
tg_collection_path
