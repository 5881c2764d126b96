#!/usr/bin/env bash
# upmd and DPDK 22.11 side by side (rings, mempools, mbufs), one binary, one
# lcore: first the timed table (ns per element, median of interleaved
# rounds, upmd/DPDK), then instructions per element for each figure
# counted by callgrind (repeatable whatever else the machine is doing).
# Usage: bench/vs-dpdk/run.sh [builddir]   (a release build:
# meson setup build-rel --buildtype=release -Dtests=false && ninja -C build-rel)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
exe=$build/bench/upmd-bench-vs-dpdk
if [ ! -x "$exe" ]; then
	echo "run.sh: $exe is missing: meson setup $build --buildtype=release && ninja -C $build" >&2
	exit 1
fi
"$exe"
command -v valgrind >/dev/null || { echo "(valgrind missing: no instruction counts)"; exit 0; }

# The binary runs each figure's loop once to warm up (n/10 + 1 calls) and
# then RUNS times n calls, n = iters / bulk, bulk elements a call.
iters=64000
runs=$(sed -n 's/^#define RUNS \([0-9]*\).*/\1/p' "$top/bench/vs-dpdk/bench_vs_dpdk.c")
out=$(mktemp /tmp/upmd-callgrind.XXXXXX)
trap 'rm -f "$out"' EXIT
echo
echo "instructions per element (callgrind, $iters elements a run)"
printf '%-34s %5s %10s %10s %8s\n' figure bulk upmd DPDK ratio
while IFS='|' read -r what kind bulk; do
	valgrind --tool=callgrind --callgrind-out-file="$out" "$exe" --iters "$iters" --only "$what" \
		--bulk "$bulk" >/dev/null 2>&1
	callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk -v kind="$kind" -v what="$what" \
		-v bulk="$bulk" -v iters="$iters" -v runs="$runs" '
		{ for (i = 1; i <= NF; i++) if ($i ~ "(upmd|dpdk)_" kind "_run$") { c = $1; gsub(",", "", c); v[$i ~ "upmd_" ? "u" : "d"] = c } }
		END {
			n = int(iters / bulk); el = (runs * n + int(n / 10) + 1) * bulk
			printf "%-34s %5u %10.1f %10.1f %8.2f\n", what (kind == "ring" ? " enqueue+dequeue" : ""), bulk, v["u"] / el, v["d"] / el, v["u"] / v["d"]
		}'
done <<'LIST'
ring SP/SC|ring|1
ring SP/SC|ring|8
ring SP/SC|ring|32
ring MP/MC|ring|1
ring MP/MC|ring|8
ring MP/MC|ring|32
mempool get+put|pool|1
mempool get+put|pool|32
mbuf alloc+free|mbuf|32
LIST
