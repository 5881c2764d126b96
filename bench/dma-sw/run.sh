#!/usr/bin/env bash
# upmd's dma_sw against DPDK 22.11's dma_skeleton, one binary: first the
# timed table (GB/s of copies at 64 B, 1 KiB, 4 KiB, median of interleaved
# rounds, upmd/DPDK), then the application's instructions per operation
# (enqueue + submit + completed, counted by callgrind: repeatable whatever
# else the machine is doing; the engines' threads are not counted).
# Usage: bench/dma-sw/run.sh [builddir] [--mib N]   (a release build:
# meson setup build-rel --buildtype=release -Dtests=false && ninja -C build-rel)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
shift || true
exe=$build/bench/upmd-bench-dma-sw
if [ ! -x "$exe" ]; then
	echo "run.sh: $exe is missing: meson setup $build --buildtype=release -Dtests=false && ninja -C $build" >&2
	exit 1
fi
"$exe" "$@"
command -v valgrind >/dev/null || { echo "(valgrind missing: no instruction counts)"; exit 0; }

ops=3200
out=$(mktemp /tmp/upmd-callgrind.XXXXXX)
trap 'rm -f "$out"' EXIT
echo
echo "application instructions per copy: enqueue + submit/32 + completed (callgrind, $ops copies in batches of 32)"
printf '%-8s %10s %10s %8s\n' size upmd DPDK ratio
for size in 64 1024 4096; do
	declare -A v=()
	for lib in upmd dpdk; do
		valgrind --tool=callgrind --callgrind-out-file="$out" "$exe" --icount "$ops" --only "$lib" \
			--size "$size" >/dev/null 2>&1
		v[$lib]=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null | awk -v lib="$lib" '
			{ for (i = 1; i <= NF; i++) if ($i ~ (":" lib "_app_(enq|cpl)$")) { c = $1; gsub(",", "", c); s += c } }
			END { print s + 0 }')
	done
	awk -v s="$size" -v u="${v[upmd]}" -v d="${v[dpdk]}" -v n="$ops" \
		'BEGIN { printf "%-8u %10.1f %10.1f %8.2f\n", s, u / n, d / n, d ? u / d : 0 }'
done
echo "goal: every ratio <= 1.0 (upmd's application side no heavier)"
