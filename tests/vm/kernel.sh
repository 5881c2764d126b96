#!/bin/bash
# Prints the path of the guest kernel (bzImage) for the VM test tier,
# building it first if the cache has no build for this source version and
# this kernel.config.
#
#   tests/vm/kernel.sh            -> /var/cache/upmd-vm/build/<key>/bzImage
#
# Only the path goes to stdout; progress and errors go to stderr.
#
# The source is Debian's linux-source-6.12, fetched with `apt-get download`
# (never installed: that would put 150 MB under /usr/src and is not needed).
# Everything lives in ${UPMD_VM_CACHE:-/var/cache/upmd-vm}, outside the
# checkout, so that a fresh clone (CI) reuses a build left on the machine:
#
#   src/linux-source-6.12_<ver>_all.deb   the downloaded package
#   src/linux-<ver>/                      its extracted, untouched tree
#   build/<ver>-<hash>/                   out-of-tree build (make O=...)
#   build/<ver>-<hash>/bzImage            the result, once it is complete
#
# <hash> covers kernel.config and RECIPE below, so editing either rebuilds.
# To move to a newer Debian source, delete src/*.deb: the next run fetches
# the current one.
set -euo pipefail

# Bump when the build steps below change in a way that changes the kernel.
RECIPE=1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment=$here/kernel.config
cache=${UPMD_VM_CACHE:-/var/cache/upmd-vm}
pkg=linux-source-6.12
jobs=${UPMD_VM_JOBS:-$(nproc)}
# make ARCH=x86_64 so that tinyconfig starts 64-bit instead of i386.
kmake=(make ARCH=x86_64)

log() { echo "kernel.sh: $*" >&2; }
die() { echo "kernel.sh: ERROR: $*" >&2; exit 1; }

[[ -r $fragment ]] || die "missing $fragment"
key_hash=$( { echo "recipe=$RECIPE"; cat "$fragment"; } | sha256sum | cut -c1-12)

# The newest package already downloaded, if any (empty if none).
cached_deb() {
	local d
	d=$(ls -1 "$cache/src/${pkg}_"*_all.deb 2>/dev/null | sort -V | tail -n1) || true
	echo "$d"
}

# Debian version from the .deb file name (an epoch ':' is written as %3a).
deb_version() {
	local b=${1##*/}
	b=${b#"${pkg}_"}
	b=${b%_all.deb}
	echo "${b//%3a/:}"
}

# The version as used in directory names: make cannot cope with ':' in
# paths, and Debian writes an epoch with one.
dir_version() { echo "${1//:/_}"; }

# Fast path: no lock, no network, no make. Must stay well under a second.
fast_path() {
	local deb ver out
	deb=$(cached_deb)
	[[ -n $deb ]] || return 1
	ver=$(deb_version "$deb")
	out=$cache/build/$(dir_version "$ver")-$key_hash/bzImage
	[[ -s $out ]] || return 1
	echo "$out"
}
fast_path && exit 0

mkdir -p "$cache/src" "$cache/build" || die "cannot create cache dir $cache (set UPMD_VM_CACHE)"

# Several runs may start at once (meson test, a developer by hand): one
# builds, the others wait for it and then take the fast path.
exec 9>"$cache/.lock"
if ! flock -n 9; then
	log "another kernel.sh holds $cache/.lock; waiting for it"
	flock 9
fi
fast_path && exit 0

# --- 1. the source package ------------------------------------------------
deb=$(cached_deb)
if [[ -z $deb ]]; then
	log "downloading $pkg with apt-get download into $cache/src"
	if ! (cd "$cache/src" && apt-get download "$pkg" >&2); then
		# A machine that never ran `apt-get update` does not know the package.
		if [[ $(id -u) -eq 0 ]]; then
			log "apt-get download failed; running apt-get update and retrying"
			apt-get update >&2 || true
			(cd "$cache/src" && apt-get download "$pkg" >&2) ||
				die "apt-get download $pkg failed"
		else
			die "apt-get download $pkg failed (as non-root; try 'apt-get update' as root)"
		fi
	fi
	deb=$(cached_deb)
	[[ -n $deb ]] || die "apt-get download reported success but no ${pkg}_*_all.deb in $cache/src"
fi
ver=$(deb_version "$deb")
log "source: ${deb##*/} (version $ver)"

# --- 2. the extracted tree (shared by every config of this version) -------
srcdir=$cache/src/linux-$(dir_version "$ver")
if [[ ! -f $srcdir/.upmd-extracted ]]; then
	log "extracting the kernel tarball from the .deb (about a minute)"
	rm -rf "$srcdir" "$srcdir.tmp"
	mkdir -p "$srcdir.tmp"
	# The .deb holds usr/src/linux-source-6.12.tar.xz, which holds
	# linux-source-6.12/; stream one into the other, no copy on disk.
	dpkg-deb --fsys-tarfile "$deb" |
		tar -xO "./usr/src/$pkg.tar.xz" |
		tar -xJ -C "$srcdir.tmp" ||
		die "could not extract $pkg.tar.xz from $deb"
	mv "$srcdir.tmp/$pkg" "$srcdir"
	rmdir "$srcdir.tmp"
	touch "$srcdir/.upmd-extracted"
fi

# --- 3. configure: tinyconfig + fragment, then olddefconfig, then check ---
bdir=$cache/build/$(dir_version "$ver")-$key_hash
mkdir -p "$bdir"
blog=$bdir/build.log
: >"$blog"
log "configuring in $bdir (tinyconfig + tests/vm/kernel.config)"
"${kmake[@]}" -C "$srcdir" O="$bdir" tinyconfig >>"$blog" 2>&1 ||
	die "make tinyconfig failed; see $blog"
# merge_config.sh -m only merges the files (it warns about each value the
# fragment overrides); olddefconfig then resolves the dependencies.
(cd "$bdir" && "$srcdir/scripts/kconfig/merge_config.sh" -m -O "$bdir" \
	"$bdir/.config" "$fragment") >>"$blog" 2>&1 ||
	die "merge_config.sh failed; see $blog"
"${kmake[@]}" -C "$srcdir" O="$bdir" olddefconfig >>"$blog" 2>&1 ||
	die "make olddefconfig failed; see $blog"
cp "$fragment" "$bdir/kernel.config.used"

# Kconfig drops an option whose dependencies are not met without a word:
# every CONFIG_X=y in the fragment must still be =y, or we stop here
# (before spending minutes on a kernel that cannot run the tests).
missing=()
while IFS= read -r opt; do
	grep -qx "$opt=y" "$bdir/.config" || missing+=("$opt")
done < <(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=y[[:space:]]*$/\1/p' "$fragment")
if ((${#missing[@]})); then
	for opt in "${missing[@]}"; do
		now=$(grep -E "^$opt=|^# $opt is not set" "$bdir/.config" || echo "absent (dependencies not met or no such option)")
		echo "kernel.sh:   $opt did not stay =y: $now" >&2
	done
	die "${#missing[@]} option(s) of tests/vm/kernel.config were dropped by olddefconfig (see above); fix their dependencies in kernel.config"
fi
log "config check: all $(grep -c '^CONFIG_[A-Za-z0-9_]*=y' "$fragment") options of kernel.config are =y"

# --- 4. build --------------------------------------------------------------
log "building bzImage with -j$jobs (2-3 minutes on 2 cores); log: $blog"
start=$SECONDS
"${kmake[@]}" -C "$srcdir" O="$bdir" -j"$jobs" bzImage >>"$blog" 2>&1 &
make_pid=$!
# A heartbeat so a caller watching stderr knows the build is alive.
while kill -0 "$make_pid" 2>/dev/null; do
	for _ in $(seq 60); do
		sleep 1
		kill -0 "$make_pid" 2>/dev/null || break
	done
	kill -0 "$make_pid" 2>/dev/null &&
		log "still building: $((SECONDS - start))s, $(find "$bdir" -name '*.o' 2>/dev/null | wc -l) objects so far"
done
if ! wait "$make_pid"; then
	tail -n 40 "$blog" >&2
	die "kernel build failed after $((SECONDS - start))s; full log: $blog"
fi
[[ -s $bdir/arch/x86/boot/bzImage ]] || die "make succeeded but $bdir/arch/x86/boot/bzImage is missing"
# Publishing the copy last makes its presence mean "complete".
cp "$bdir/arch/x86/boot/bzImage" "$bdir/bzImage.tmp"
mv "$bdir/bzImage.tmp" "$bdir/bzImage"
log "built in $((SECONDS - start))s"
# An extracted tree is 1.7 GB: drop those of other source versions (their
# finished bzImages in build/ stay usable).
for old in "$cache"/src/linux-*/; do
	[[ ${old%/} == "$srcdir" ]] || { log "removing old source tree $old"; rm -rf "$old"; }
done
echo "$bdir/bzImage"
