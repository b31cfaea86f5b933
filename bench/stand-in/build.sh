#!/usr/bin/env bash
# Builds the light VMM stand-in (stand-in.c) into .vmwarden-cache/stand-in and prints its path.
# Installs gcc (and the C library headers) with apt-get when the compiler is missing: as root on
# Debian that needs nothing else. Rebuilds only when the source is newer than the binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/.vmwarden-cache/stand-in"
source="$here/stand-in.c"

if [[ -x "$out" && "$out" -nt "$source" ]]; then
	echo "$out"
	exit 0
fi

if ! command -v gcc >/dev/null 2>&1; then
	if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		echo "stand-in: gcc is missing; install it (Debian: apt-get install gcc libc6-dev)" >&2
		exit 1
	fi
	echo "stand-in: installing gcc with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends gcc libc6-dev >&2
fi

mkdir -p "$(dirname "$out")"
temporary="$out.$$"
# Static when the C library allows it: no loader, no shared-library mappings, the smallest process.
if ! gcc -O2 -static -o "$temporary" "$source" 2>/dev/null; then
	gcc -O2 -o "$temporary" "$source"
fi
mv -f "$temporary" "$out"
echo "$out"
