#!/usr/bin/env bash
# README command 1: install what is needed, build, and run the main job:
# upmd-testpmd on its embedded default (no device arguments: two ports
# cross-connected in memory), io forwarding for 5 s, printing Mpps.
# Arguments are passed on (EAL options, then -- and testpmd's).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
scripts/reserve-hugepages.sh 64
exec build/apps/testpmd/upmd-testpmd "$@"
