#!/bin/bash
# The VM test tier: runs statically linked test programs inside a QEMU
# guest on a real 6.12 kernel with an IOMMU (QEMU's intel-iommu under TCG)
# and six emulated PCI devices bound to vfio-pci (NVMe, two virtio-net,
# two e1000e, edu).
#
#   tests/vm/run.sh BIN...        run these programs
#   tests/vm/run.sh DIR           run every DIR/vmtest-* executable
#   tests/vm/run.sh               run the smoke test (built from smoke.c)
#
# Prints PASS/FAIL/SKIP per test (exit 77 = skip), the path of the full
# guest log, and finally "N passed, N failed, N skipped".
# Exit: 0 if no test failed and the guest finished; 1 otherwise (including
# a kernel that does not build); 77 only if QEMU itself cannot run.
#
# Environment:
#   UPMD_VM_CACHE         cache dir (default /var/cache/upmd-vm): kernel, disk
#   UPMD_VM_TIMEOUT       seconds the whole guest run may take (default 1200)
#   UPMD_VM_TEST_TIMEOUT  seconds one test may take in the guest (default 300)
#   UPMD_VM_WORK          where to keep the log and initramfs (default: new
#                         /tmp/upmd-vm.XXXXXX)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${UPMD_VM_CACHE:-/var/cache/upmd-vm}
run_timeout=${UPMD_VM_TIMEOUT:-1200}
qemu=${UPMD_VM_QEMU:-qemu-system-x86_64}

log() { echo "run.sh: $*" >&2; }
die() { echo "run.sh: ERROR: $*" >&2; exit 1; }
skip() { echo "run.sh: SKIP: $*"; exit 77; }

# --- QEMU: the one reason to skip --------------------------------------------
command -v "$qemu" >/dev/null ||
	skip "$qemu not found (apt-get install qemu-system-x86): cannot run the VM tier"

# --- the work dir: log and initramfs of this run -----------------------------
work=${UPMD_VM_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/upmd-vm.XXXXXX")}
mkdir -p "$work"
guest_log=$work/guest.log

# --- which tests -------------------------------------------------------------
tests=()
if (($# == 0)); then
	# No arguments: the smoke test, which needs nothing but gcc.
	gcc -static -O2 -Wall -Werror -o "$work/vmtest-smoke" "$here/smoke.c" ||
		die "cannot build smoke.c"
	tests=("$work/vmtest-smoke")
fi
for arg in "$@"; do
	if [[ -d $arg ]]; then
		found=0
		while IFS= read -r f; do
			tests+=("$f")
			found=1
		done < <(find "$arg" -maxdepth 1 -type f -name 'vmtest-*' -perm -u+x | LC_ALL=C sort)
		((found)) || log "WARNING: no vmtest-* executable in $arg"
	else
		tests+=("$arg")
	fi
done

# --- the kernel (built once, then cached) ------------------------------------
kernel=$("$here/kernel.sh") || die "no guest kernel: tests/vm/kernel.sh failed (see above)"

# --- the initramfs ------------------------------------------------------------
initrd=$work/initramfs.cpio.gz
"$here/initramfs.sh" "$initrd" ${tests[@]+"${tests[@]}"} || die "initramfs.sh failed"

# --- the NVMe namespace: 64 MiB, sparse, one per run --------------------------
# Per run because QEMU write-locks its image and runs may overlap.
mkdir -p "$cache/disks"
disk=$cache/disks/nvme-$$.img
truncate -s 64M "$disk"

qemu_pid=
cleanup() {
	if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null || true
	fi
	rm -f "$disk"
}
trap cleanup EXIT

# --- boot ----------------------------------------------------------------------
# Always TCG: some machines have a paravirtual /dev/kvm that a stock kernel
# cannot boot on. intel-iommu comes first, before the devices behind it;
# caching-mode=on is what lets vfio-pci in the guest use it, intremap=on
# (with kernel-irqchip=split) gives MSI/MSI-X interrupt remapping.
cmdline="console=ttyS0 intel_iommu=on iommu=nopt panic=-1 loglevel=4"
qemu_args=(
	-machine q35,kernel-irqchip=split -accel tcg -cpu max -m 1G -smp 2
	-nographic -no-reboot
	-device intel-iommu,intremap=on,caching-mode=on
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline"
	-drive "file=$disk,if=none,id=nvm0,format=raw"
	-device nvme,drive=nvm0,serial=upmd0001
	# Hub 0: two modern virtio-net; hub 1: two e1000e. A hub hands each
	# frame to every other port on it, so the two NICs of a hub are
	# cabled to each other and to nothing else.
	-netdev hubport,hubid=0,id=n0
	-device virtio-net-pci,disable-legacy=on,iommu_platform=on,netdev=n0,mac=52:54:00:00:00:01
	-netdev hubport,hubid=0,id=n1
	-device virtio-net-pci,disable-legacy=on,iommu_platform=on,netdev=n1,mac=52:54:00:00:00:03
	-netdev hubport,hubid=1,id=n2
	-device e1000e,netdev=n2,mac=52:54:00:00:00:02
	-netdev hubport,hubid=1,id=n3
	-device e1000e,netdev=n3,mac=52:54:00:00:00:04
	-device edu,dma_mask=0xffffffff
)
echo "$qemu ${qemu_args[*]}" >"$work/qemu.cmd"
log "booting the guest with ${#tests[@]} test(s); guest log: $guest_log"
start=$SECONDS
"$qemu" "${qemu_args[@]}" </dev/null >"$guest_log" 2>&1 &
qemu_pid=$!

# Follow the log: report each test as it starts and ends, notice the end of
# the run, and enforce the whole-run timeout.
seen=0
done_at=
timed_out=0
while kill -0 "$qemu_pid" 2>/dev/null; do
	sleep 1
	n=$(wc -l <"$guest_log")
	if ((n > seen)); then
		while IFS= read -r line; do
			line=${line//$'\r'/}
			case $line in
			*UPMD-VM-DEV\ *) log "${line#*UPMD-VM-}" ;;
			*UPMD-VM-START\ *) log "[$((SECONDS - start))s] start ${line##*UPMD-VM-START }" ;;
			*UPMD-VM-RESULT\ *) log "[$((SECONDS - start))s] result ${line##*UPMD-VM-RESULT }" ;;
			*UPMD-VM-DONE*) done_at=${done_at:-$SECONDS} ;;
			esac
		done < <(sed -n "$((seen + 1)),${n}p" "$guest_log")
		seen=$n
	fi
	# The guest powers itself off after UPMD-VM-DONE; do not wait forever
	# if that power-off does not reach QEMU.
	if [[ -n $done_at ]] && ((SECONDS - done_at > 20)); then
		log "guest printed UPMD-VM-DONE but QEMU did not exit; stopping it"
		kill "$qemu_pid" 2>/dev/null || true
		break
	fi
	if ((SECONDS - start > run_timeout)); then
		timed_out=1
		echo "run.sh: TIMEOUT: the guest did not finish within ${run_timeout}s (UPMD_VM_TIMEOUT); stopping QEMU" >&2
		kill "$qemu_pid" 2>/dev/null || true
		break
	fi
done
qemu_rc=0
wait "$qemu_pid" 2>/dev/null || qemu_rc=$?
qemu_pid=
elapsed=$((SECONDS - start))

# A QEMU that could not start leaves no guest output at all: that is the
# only case that counts as "cannot run" (exit 77).
if ((qemu_rc != 0)) && ! grep -qE 'SeaBIOS|Linux version|upmd-init' "$guest_log"; then
	echo "run.sh: QEMU failed to start (exit $qemu_rc):" >&2
	tail -n 20 "$guest_log" >&2
	skip "QEMU cannot run on this machine (see above); guest log: $guest_log"
fi

# --- results ---------------------------------------------------------------------
clean_log=$work/guest.clean.log
tr -d '\r' <"$guest_log" >"$clean_log"

echo "guest log: $guest_log"
grep -o 'UPMD-VM-DEV .*' "$clean_log" | sed 's/^UPMD-VM-DEV /device: /' || true
if grep -q 'Kernel panic' "$clean_log"; then
	echo "guest kernel panicked:"
	grep -A3 'Kernel panic' "$clean_log" | head -n 8
fi

# The output of one test: its lines between START and RESULT.
test_output() {
	awk -v s="UPMD-VM-START $1" -v r="UPMD-VM-RESULT $1 " '
		index($0, s) { on = 1; next }
		index($0, r) { on = 0 }
		on' "$clean_log" | tail -n 60 | sed 's/^/    | /'
}

passed=0
failed=0
skipped=0
for t in ${tests[@]+"${tests[@]}"}; do
	name=${t##*/}
	rc=$(grep -o "UPMD-VM-RESULT $name [0-9]*\$" "$clean_log" | tail -n1 | awk '{print $3}') || true
	if [[ -z $rc ]]; then
		if grep -q "UPMD-VM-START $name\$" "$clean_log"; then
			echo "FAIL $name (no result: it hung or the guest died while it ran)"
			test_output "$name"
		else
			echo "FAIL $name (not run: the guest did not get to it)"
		fi
		failed=$((failed + 1))
	elif ((rc == 0)); then
		echo "PASS $name"
		# What it found, without per-assert lines or kernel messages.
		test_output "$name" | grep -vE '^    \| +(ok |Test: .*passed|[0-9]+\. )|DMAR|kernel:|qemu-system|^    \| *$' |
			tail -n 12 || true
		passed=$((passed + 1))
	elif ((rc == 77)); then
		echo "SKIP $name"
		skipped=$((skipped + 1))
	else
		why="exit $rc"
		grep -q "upmd-init: $name timed out" "$clean_log" &&
			why="$why: timed out after ${UPMD_VM_TEST_TIMEOUT:-300}s, UPMD_VM_TEST_TIMEOUT"
		echo "FAIL $name ($why)"
		test_output "$name"
		failed=$((failed + 1))
	fi
done

status=0
((failed == 0)) || status=1
if ! grep -q 'UPMD-VM-DONE$' "$clean_log"; then
	if ((timed_out)); then
		echo "the guest did not finish: whole-run timeout of ${run_timeout}s (UPMD_VM_TIMEOUT)"
	else
		echo "the guest did not reach UPMD-VM-DONE (QEMU exit $qemu_rc); last lines:"
		tail -n 15 "$clean_log" | sed 's/^/    | /'
	fi
	status=1
fi
echo "guest ran ${elapsed}s; full log: $guest_log"
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
