#!/usr/bin/env bash
# upmd-testpmd against Debian's dpdk-testpmd (22.11), back to back on the
# same machine and lcores: io forwarding between two net_null ports, one
# forwarding lcore, burst 32, --no-huge. Each run prints per-second rates
# (--stats-period 1); a run's figure is the median of its seconds after
# the first two (warm-up), summed over both ports' TX; the table gives the
# median of ROUNDS interleaved runs and upmd/DPDK. Then the same for
# upmd-testpmd over the two model virtio-net ports (no DPDK peer: the
# model is upmd's own).
# Usage: bench/testpmd/run.sh [builddir]   (a release build:
#   meson setup build-rel --buildtype=release -Dtests=false && ninja -C build-rel)
# Environment: SECS (seconds a run, default 8), ROUNDS (default 3).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
upmd=$build/apps/testpmd/upmd-testpmd
secs=${SECS:-8}
rounds=${ROUNDS:-3}
[ -x "$upmd" ] || { echo "run.sh: $upmd is missing: meson setup $build --buildtype=release && ninja -C $build" >&2; exit 1; }
dpdk=$(command -v dpdk-testpmd) || { echo "run.sh: dpdk-testpmd is missing (Debian's dpdk-dev: scripts/install-deps.sh)" >&2; exit 1; }
common_eal=(-l 0-1 --no-huge -m 1024 --vdev net_null0 --vdev net_null1)
common_app=(--forward-mode=io --nb-cores=1 --burst=32 --total-num-mbufs=16384 --stats-period=1)

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }

# Per-second TX Mpps of both ports, one line a second, warm-up dropped.
upmd_run() {
	"$upmd" "${common_eal[@]}" "$@" -- "${common_app[@]}" --run-time="$secs" 2>/dev/null |
		awk '/^statistics after/ { if (n++ >= 2 && s) print s; s = 0 }
		     /^  port [0-9]+ / { for (i = 1; i <= NF; i++) if ($i == "TX") s += $(i + 1) }
		     END { }'
}
dpdk_run() {
	# With --stats-period it prints until a signal (it reads no ENTER).
	{ timeout -s INT -k 10 "$secs" "$dpdk" "${common_eal[@]}" --no-pci --file-prefix=upmd-bench-$$ -- \
		"${common_app[@]}" </dev/null 2>/dev/null || true; } |
		awk '/Tx-pps:/ { s += $2; if (++k % 2 == 0) { if (n++ >= 2) print s / 1e6; s = 0 } }'
}

u_all=() d_all=()
for r in $(seq "$rounds"); do
	u=$(upmd_run | median)
	d=$(dpdk_run | median)
	u_all+=("$u") d_all+=("$d")
	echo "round $r: upmd-testpmd $u Mpps, dpdk-testpmd $d Mpps"
done
U=$(printf '%s\n' "${u_all[@]}" | median)
D=$(printf '%s\n' "${d_all[@]}" | median)
echo
echo "io forwarding, 2 x net_null, 1 forwarding lcore, burst 32, --no-huge (median of $rounds runs of ${secs} s)"
printf '%-40s %10s\n' "" "Mpps"
printf '%-40s %10.2f\n' "upmd-testpmd" "$U"
printf '%-40s %10.2f\n' "dpdk-testpmd $(dpkg-query -W -f '${Version}' dpdk-dev 2>/dev/null || true)" "$D"
awk -v u="$U" -v d="$D" 'BEGIN { printf "%-40s %10.2f  (goal >= 1.0)\n", "ratio upmd/DPDK", (d > 0 ? u / d : 0) }'

# The real PMD on the model devices: io forwarding of what --tx-first sent.
v=$("$upmd" -l 0-1 --no-huge -m 256 --model 'virtio-net@0000:00:04.0:peer=0000:00:05.0;virtio-net@0000:00:05.0' \
	-a 0000:00:04.0 -a 0000:00:05.0 -- --tx-first --run-time="$secs" --json 2>/dev/null | grep '^{' |
	python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["total"]["tx_mpps"])')
echo
printf '%-40s %10s Mpps\n' "upmd-testpmd, 2 x model virtio-net (io)" "$v"
