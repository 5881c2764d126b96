#!/usr/bin/env bash
# Install the Debian packages upmd needs (config/debian-packages.txt and
# tests/vm/deps.txt), from the machine's default suites only.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

pkgs=$(cat "$top/config/debian-packages.txt" "$top"/tests/vm/deps.txt 2>/dev/null \
	| sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: all $(echo $pkgs | wc -w) packages present"
	exit 0
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing
