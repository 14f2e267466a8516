#!/usr/bin/env bash
# Set up if needed, then run every package's tests (pytest arguments pass through).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/setup.sh"
# shellcheck disable=SC1091
. "$repo/scripts/env.sh"
cd "$repo"
exec python -m pytest "$@"
