#!/usr/bin/env bash
# Make sure at least N (default 64) free 2 MiB hugepages exist, as root.
# Prints what the kernel gave; never fails the caller (the EAL reports a
# shortage itself, with the fix).
set -u
want=${1:-64}
f=/sys/kernel/mm/hugepages/hugepages-2048kB
[ -d "$f" ] || { echo "hugepages: no 2 MiB pool on this kernel"; exit 0; }
free=$(cat $f/free_hugepages)
if [ "$free" -lt "$want" ]; then
	total=$(cat $f/nr_hugepages)
	if [ "$(id -u)" -eq 0 ]; then
		echo $((total + want - free)) > $f/nr_hugepages 2>/dev/null || true
	else
		echo $((total + want - free)) | sudo tee $f/nr_hugepages >/dev/null 2>&1 || true
	fi
fi
echo "hugepages: $(cat $f/free_hugepages) free of $(cat $f/nr_hugepages) (2 MiB)"
