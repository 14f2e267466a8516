#!/usr/bin/env bash
# Benchmark the frame path: focus measure costs, camera -> sharpness over DDS (two
# processes, composed, compressed) against a bare rclpy pair.
# Arguments pass through: --seconds S --long-run S --quick --out DIR
set -eo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$repo/scripts/env.sh"
cd "$repo"
exec python -m autofocus.tools.pipeline_benchmark "$@"
