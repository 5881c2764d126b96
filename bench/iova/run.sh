#!/usr/bin/env bash
# The iova benchmark: timings (medians of 7 runs, DPDK's rte_mem_virt2iova
# in the same binary), then instructions per cached alloc+free pair counted
# by callgrind. Usage: bench/iova/run.sh [builddir]   (default: build)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
exe=$build/bench/upmd-bench-iova
if [ ! -x "$exe" ]; then
	echo "run.sh: $exe is missing: meson setup $build && ninja -C $build" >&2
	exit 1
fi
"$exe"
pairs=100000
out=$(mktemp /tmp/upmd-callgrind.XXXXXX)
valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$out" \
	"$exe" --callgrind-pairs "$pairs" >/dev/null 2>&1
ir=$(awk '/^summary:/ { print $2 }' "$out")
rm -f "$out"
awk -v ir="$ir" -v n="$pairs" 'BEGIN { printf "cached alloc+free pair: %.1f instructions (callgrind, %d pairs; target <= 60)\n", ir / n, n }'
