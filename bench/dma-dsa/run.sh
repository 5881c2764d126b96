#!/usr/bin/env bash
# The DSA PMD's instructions per descriptor (enqueue + submit + completed),
# against the model DSA device, for a dedicated work queue (MOVDIR64B, or
# the model's store sequence where valgrind cannot run it) and a shared one
# (ENQCMD, emulated by the model on CPUs without it). Callgrind collects
# only inside the PMD's calls; the model's device thread is not counted,
# the emulated ENQCMD is (it stands for one instruction on real hardware).
# Usage: bench/dma-dsa/run.sh [builddir]   (a release build)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
exe=$build/bench/upmd-bench-dma-dsa
[ -x "$exe" ] || { echo "run.sh: $exe is missing: meson setup $build --buildtype=release && ninja -C $build" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "run.sh: valgrind is needed (scripts/install-deps.sh installs it)" >&2; exit 1; }
out=$(mktemp /tmp/upmd-callgrind.XXXXXX)
trap 'rm -f "$out" "$out".*' EXIT
iters=${ITERS:-400}
printf '%-10s %6s %14s\n' queue burst instructions
for kind in d s; do
	for burst in 1 32; do
		# Valgrind runs neither MOVDIR64B nor the model's register traps:
		# the BAR is polled plain memory, MOVDIR64B masked (bit 2 of UPMD_CPU_MASK).
		UPMD_MODEL_NO_TRAP=1 UPMD_CPU_MASK=4 valgrind --tool=callgrind --callgrind-out-file="$out" \
			--toggle-collect=measure_submit --toggle-collect=measure_reap \
			"$exe" "$kind" "$burst" "$iters" >"$out.stdout" 2>/dev/null ||
			{ cat "$out.stdout"; echo "run.sh: the $kind/$burst run failed" >&2; exit 1; }
		total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
		printf '%-10s %6u %14.1f\n' "$([ $kind = d ] && echo dedicated || echo shared)" "$burst" \
			"$(awk -v t="$total" -v n="$((burst * iters))" 'BEGIN {print t / n}')"
	done
done
