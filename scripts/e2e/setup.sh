#!/usr/bin/env bash
# Prepares what the end-to-end tests boot: QEMU, a Debian kernel and a busybox initramfs guest.
#
#   scripts/e2e/setup.sh            install what is missing, build the guest, print its manifest
#
# Installs Debian's qemu-system-x86 and busybox-static with apt-get (apt-get update only when a
# package is missing), unpacks vmlinuz and a few modules from the linux-image-amd64 kernel
# package into .vmwarden-cache/e2e/, and builds the initramfs from scripts/e2e/guest-init.sh.
# Idempotent and fast once done. The last line of stdout is the manifest (JSON); messages go to
# stderr.
#
# Exit status: 0 ready; 3 this machine cannot have the packages (not Debian or amd64, not root and
# no sudo, apt-get failed): the tests skip with the message printed on stderr; 1 anything else (a
# bug: the tests fail).
set -euo pipefail

readonly UNAVAILABLE=3
here="$(cd "${BASH_SOURCE[0]%/*}" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${VMWARDEN_E2E_CACHE:-$root/.vmwarden-cache/e2e}"
guest_init="$here/guest-init.sh"
readonly packages=(qemu-system-x86 busybox-static)
readonly kernel_meta=linux-image-amd64
# Modules the guest loads (paths under lib/modules/VERSION/kernel/), in load order.
readonly modules=(
	drivers/misc/pvpanic/pvpanic.ko
	drivers/misc/pvpanic/pvpanic-mmio.ko
	drivers/acpi/button.ko
	drivers/input/evdev.ko
	drivers/virtio/virtio_ring.ko
	drivers/virtio/virtio.ko
	drivers/virtio/virtio_pci_legacy_dev.ko
	drivers/virtio/virtio_pci_modern_dev.ko
	drivers/virtio/virtio_pci.ko
	drivers/virtio/virtio_balloon.ko
	drivers/block/virtio_blk.ko
	drivers/char/virtio_console.ko
)

say() {
	echo "vmwarden e2e setup: $*" >&2
}

unavailable() {
	say "$* (the end-to-end tests need Debian's qemu-system-x86, busybox-static and $kernel_meta packages)"
	exit "$UNAVAILABLE"
}

as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		unavailable "cannot run $1 as root: not root and no password-less sudo"
	fi
}

package_installed() {
	[[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || unavailable "apt-get and dpkg-deb not found: not a Debian system"

# One setup at a time (test files may start it together): the others wait, then find it done.
mkdir -p "$cache"
if command -v flock >/dev/null; then
	exec 9>"$cache/.lock"
	flock 9
fi
[[ "$(dpkg --print-architecture)" == amd64 ]] || unavailable "the guest kernel package is built for amd64, this is $(dpkg --print-architecture)"

# 1. Packages.
missing=()
for package in "${packages[@]}"; do
	package_installed "$package" || missing+=("$package")
done

if ((${#missing[@]} > 0)); then
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq >&2 || unavailable "apt-get update failed"
	as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || unavailable "apt-get install ${missing[*]} failed"
fi

qemu="$(command -v qemu-system-x86_64)" || unavailable "qemu-system-x86_64 is not on PATH after installing qemu-system-x86"
busybox=/bin/busybox
# The initramfs has no libraries: busybox must be the static build.
if ! "$busybox" --list 2>/dev/null | grep -x cpio >/dev/null || ldd "$busybox" >/dev/null 2>&1; then
	unavailable "$busybox is not busybox-static's static build"
fi

# 2. The kernel: vmlinuz and the modules above, from the Debian kernel package.
kernel_package="$(apt-cache depends "$kernel_meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)"
if [[ -z "$kernel_package" ]]; then
	as_root apt-get update -qq >&2 || unavailable "apt-get update failed"
	kernel_package="$(apt-cache depends "$kernel_meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)"
fi

[[ -n "$kernel_package" ]] || unavailable "apt-cache knows no $kernel_meta"
kernel_dir="$cache/$kernel_package"
# Unpacked again when the list above gained a module the cache does not have.
modules_present=true
for module in "${modules[@]}"; do
	[[ -s "$kernel_dir/modules/${module##*/}" ]] || modules_present=false
done

if [[ ! -s "$kernel_dir/vmlinuz" || ! -f "$kernel_dir/.complete" || $modules_present == false ]]; then
	say "unpacking $kernel_package"
	rm -rf "$kernel_dir"
	download="$(mktemp -d)"
	trap 'rm -rf "$download"' EXIT
	chmod 0755 "$download"
	# apt-get download writes into the current directory.
	(cd "$download" && apt-get download -qq "$kernel_package" >&2 2>/dev/null) || (cd "$download" && as_root apt-get download -qq "$kernel_package" >&2) || unavailable "apt-get download $kernel_package failed"
	deb="$(find "$download" -maxdepth 1 -name '*.deb' | head -n 1)"
	[[ -n "$deb" ]] || unavailable "apt-get download $kernel_package gave no package"
	mkdir -p "$download/tree" "$kernel_dir/modules"
	wanted=('./boot/vmlinuz-*')
	for module in "${modules[@]}"; do
		wanted+=("./lib/modules/*/kernel/$module")
	done

	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$download/tree" --wildcards "${wanted[@]}"
	cp "$download"/tree/boot/vmlinuz-* "$kernel_dir/vmlinuz"
	for module in "${modules[@]}"; do
		cp "$download"/tree/lib/modules/*/kernel/"$module" "$kernel_dir/modules/"
	done

	touch "$kernel_dir/.complete"
	rm -rf "$download"
	trap - EXIT
fi

# 3. The initramfs: busybox, the modules and /init. Rebuilt when one of them changed.
initrd="$kernel_dir/initramfs.cpio.gz"
inputs_hash="$( (sha256sum "$guest_init" "$busybox" "$kernel_dir"/modules/*.ko | sed 's| .*/| |'; echo "${modules[*]}") | sha256sum | cut -c1-16)"
if [[ ! -s "$initrd" || "$(cat "$initrd.inputs" 2>/dev/null)" != "$inputs_hash" ]]; then
	say "building the guest initramfs"
	staging="$(mktemp -d)"
	trap 'rm -rf "$staging"' EXIT
	mkdir -p "$staging"/{bin,dev,proc,sys,tmp,etc,lib/modules}
	cp "$busybox" "$staging/bin/busybox"
	cp "$guest_init" "$staging/init"
	chmod 0755 "$staging/init" "$staging/bin/busybox"
	cp "$kernel_dir"/modules/*.ko "$staging/lib/modules/"
	# Sorted names and fixed times, so the same inputs give the same archive.
	find "$staging" -exec touch -h -d @0 {} +
	(cd "$staging" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -9 -n > "$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	echo "$inputs_hash" > "$initrd.inputs"
	rm -rf "$staging"
	trap - EXIT
fi

# 4. The manifest the tests read.
json_string() {
	local value="$1"
	value="${value//\\/\\\\}"
	printf '"%s"' "${value//\"/\\\"}"
}

qemu_version="$("$qemu" --version | head -n 1)"
manifest="{\"qemu\":$(json_string "$qemu"),\"qemuVersion\":$(json_string "$qemu_version"),\"kernel\":$(json_string "$kernel_dir/vmlinuz"),\"initrd\":$(json_string "$initrd"),\"kernelPackage\":$(json_string "$kernel_package")}"
echo "$manifest" > "$cache/manifest.json"
echo "$manifest"
