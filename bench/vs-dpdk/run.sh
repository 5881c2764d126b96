#!/usr/bin/env bash
# upmd and DPDK 22.11 side by side (rings, mempools, mbufs), one binary, one
# lcore. Usage: bench/vs-dpdk/run.sh [builddir]   (a release build:
# meson setup build-rel --buildtype=release -Dtests=false && ninja -C build-rel)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
exe=$build/bench/upmd-bench-vs-dpdk
if [ ! -x "$exe" ]; then
	echo "run.sh: $exe is missing: meson setup $build --buildtype=release && ninja -C $build" >&2
	exit 1
fi
exec "$exe"
