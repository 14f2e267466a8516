#!/usr/bin/env bash
# Run the focus strategy benchmark (simulated closed loop + real focus stack).
# Arguments pass through: --trials N --seed S --out DIR --quick
set -eo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$repo/scripts/env.sh"
cd "$repo"
exec python -m autofocus.tools.benchmark "$@"
