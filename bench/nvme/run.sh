#!/usr/bin/env bash
# The NVMe driver against the model controller:
#  1. instructions per 4 KiB read, submission plus completion (callgrind,
#     collecting only inside upmd_nvme_ns_cmd_read and
#     upmd_nvme_qpair_process_completions; batches of 32 reaped by one poll);
#  2. IOPS and latency of one lcore at QD 32 (upmd-nvme-perf, randread 4 KiB).
# Usage: bench/nvme/run.sh [builddir]  (a release build:
# meson setup build-rel --buildtype=release -Dtests=false && ninja -C build-rel)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
exe=$build/bench/upmd-bench-nvme
perf=$build/apps/nvme-perf/upmd-nvme-perf
for f in "$exe" "$perf"; do
	[ -x "$f" ] || { echo "run.sh: $f is missing: meson setup $build --buildtype=release && ninja -C $build" >&2; exit 1; }
done
batches=${BATCHES:-200}
if command -v valgrind >/dev/null; then
	out=$(mktemp /tmp/upmd-callgrind.XXXXXX)
	trap 'rm -f "$out"' EXIT
	# Valgrind cannot single-step the model's trapped registers: the BAR is
	# plain memory the model polls (UPMD_MODEL_NO_TRAP).
	UPMD_MODEL_NO_TRAP=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
		--toggle-collect=upmd_nvme_ns_cmd_read --toggle-collect=upmd_nvme_qpair_process_completions \
		"$exe" "$batches" >"$out.stdout" 2>/dev/null || { cat "$out.stdout"; echo "run.sh: the callgrind run failed" >&2; exit 1; }
	reads=$(awk '/^reads/ {print $4}' "$out.stdout")
	total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
	echo "driver instructions per 4 KiB read (submit + complete), callgrind, $reads reads: $(awk -v t="$total" -v n="$reads" 'BEGIN {printf "%.1f", t / n}')   (goal <= 250)"
	callgrind_annotate --inclusive=yes "$out" 2>/dev/null | grep -E "upmd_nvme|nvme_qpair|upmd_mempool|upmd_iova" | head -12 | sed 's/^/    /'
	rm -f "$out.stdout"
else
	echo "(valgrind missing: no instruction count)"
fi
echo
echo "one lcore, QD 32, 4 KiB random reads on the model controller (upmd-nvme-perf):"
"$perf" -l 0 --no-huge -m 256 --model 'nvme@0000:00:04.0:ns_mb=64' -a 0000:00:04.0 -- -q 32 -o 4096 -w randread -t "${SECS:-5}"
