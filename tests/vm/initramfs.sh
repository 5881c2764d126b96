#!/bin/bash
# Builds the guest's initramfs for the VM test tier:
#
#   tests/vm/initramfs.sh OUT.cpio.gz BIN...
#
# It holds busybox-static (with applet symlinks), the given statically
# linked test programs in /tests/, and tests/vm/init as /init. The init
# binds the emulated devices to vfio-pci, runs every /tests/* program in
# name order, prints "UPMD-VM-RESULT <name> <exit-code>" after each, then
# "UPMD-VM-DONE", and powers the guest off (see init for the details).
#
# Environment:
#   UPMD_VM_TEST_TIMEOUT  seconds each test may run in the guest (default 300)
#   UPMD_VM_HUGEPAGES     2 MiB hugepages the guest reserves (default 64)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=${UPMD_VM_BUSYBOX:-/bin/busybox}

die() { echo "initramfs.sh: ERROR: $*" >&2; exit 1; }

(($# >= 1)) || die "usage: $0 OUT.cpio.gz BIN..."
out=$1
shift

# The guest has no libc of its own: busybox must be the static build
# (Debian's busybox-static), and so must every test program.
is_dynamic_elf() {
	readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}
[[ -x $busybox ]] || die "$busybox not found: apt-get install busybox-static"
! is_dynamic_elf "$busybox" || die "$busybox is dynamically linked: apt-get install busybox-static"

stage=$(mktemp -d "${TMPDIR:-/tmp}/upmd-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc,tests}
cp "$busybox" "$stage/bin/busybox"
# The same layout as `busybox --install -s`, but into the staging tree:
# --list-full names each applet with its directory (bin/sh, sbin/poweroff).
"$busybox" --list-full | while read -r applet; do
	[[ $applet == bin/busybox ]] && continue
	ln -sf /bin/busybox "$stage/$applet"
done

install -m 0755 "$here/init" "$stage/init"

# The guest reads its settings from here (init sources it).
cat >"$stage/etc/upmd-vm.conf" <<EOF
UPMD_VM_TEST_TIMEOUT=${UPMD_VM_TEST_TIMEOUT:-300}
UPMD_VM_HUGEPAGES=${UPMD_VM_HUGEPAGES:-64}
EOF

for bin in "$@"; do
	[[ -f $bin && -x $bin ]] || die "not an executable file: $bin"
	name=${bin##*/}
	[[ -e $stage/tests/$name ]] && die "two tests named $name"
	if head -c4 "$bin" | grep -q $'^\x7fELF'; then
		! is_dynamic_elf "$bin" ||
			die "$bin is dynamically linked; the guest has no shared libraries (link it with -static)"
	fi
	cp "$bin" "$stage/tests/$name"
	chmod 0755 "$stage/tests/$name"
done

# The kernel opens /dev/console for init before anything is mounted; give
# it one when we can make device nodes (init re-opens it from devtmpfs
# anyway, so a non-root build still works).
if [[ $(id -u) -eq 0 ]]; then
	mknod -m 600 "$stage/dev/console" c 5 1
fi

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
	cpio --null --create --format=newc --owner=0:0 --quiet) |
	gzip -6n >"$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs.sh: wrote $out ($(du -h "$out" | cut -f1), $# test(s))" >&2
