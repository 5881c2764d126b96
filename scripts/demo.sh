#!/usr/bin/env bash
# README command 1: install what is needed, build, and run the main job.
# Until upmd-testpmd exists the main job is upmd-demo on the in-process
# model: EAL init, a copy engine DMAing through the one IOAS, a fault.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
scripts/reserve-hugepages.sh 16
exec build/apps/demo/upmd-demo "$@"
