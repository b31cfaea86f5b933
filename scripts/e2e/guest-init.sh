#!/bin/busybox sh
# /init of the vmwarden end-to-end guest (a busybox initramfs; see docs/qemu.md).
# The kernel command line picks what it does: vmwarden.scenario=NAME (below). It speaks the
# vmwarden guest conventions: console on ttyS0, the failure reason on ttyS1, VMW1 payload reports
# on ttyS2, the log on hvc2, disks as vda, vdb, ...

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() {
	echo "vmwarden-guest: $*"
}

# Drivers Debian builds as modules: pvpanic (guest panic reports), the ACPI power button and
# evdev (graceful power-off), virtio (disks, the log console and the memory balloon).
for module in pvpanic pvpanic-mmio button evdev virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_balloon virtio_blk virtio_console; do
	insmod "/lib/modules/$module.ko" 2>/dev/null || say "no module $module"
done

scenario=poweroff
for word in $(cat /proc/cmdline); do
	case "$word" in
	vmwarden.scenario=*) scenario="${word#vmwarden.scenario=}" ;;
	esac
done

say "scenario $scenario"

# Raw mode: no echo, no \n -> \r\n translation, so the host reads exactly what is written.
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null

report() {
	echo "VMW1 $*" > /dev/ttyS2
}

power_off() {
	say "powering off"
	sync
	poweroff -f
}

# Graceful stop: the host's ACPI power button press (QMP system_powerdown) runs this.
wait_for_power_button() {
	mkdir -p /etc/acpi/PWRF
	cat > /etc/acpi/PWRF/00000080 <<'SCRIPT'
#!/bin/sh
echo "vmwarden-guest: power button" > /dev/console
echo "VMW1 FINISHED 0" > /dev/ttyS2
sync
poweroff -f
SCRIPT
	chmod +x /etc/acpi/PWRF/00000080
	# acpid opens the event devices it finds when it starts: wait for the power button's device,
	# then until acpid holds it open, so a press right after READY is never lost.
	event=
	for attempt in $(seq 100); do
		for name in /sys/class/input/input*/name; do
			if [ "$(cat "$name")" = "Power Button" ]; then
				event="$(ls -d "${name%/name}"/event* 2>/dev/null | head -n 1)"
				event="${event##*/}"
			fi
		done
		[ -n "$event" ] && [ -c "/dev/input/$event" ] && break
		sleep 0.05
	done
	# Its log file must be writable (the default is /var/log/acpid.log).
	acpid -f -c /etc/acpi -l /tmp/acpid.log &
	acpid_pid=$!
	for attempt in $(seq 100); do
		ls -l "/proc/$acpid_pid/fd" 2>/dev/null | grep -q "/dev/input/$event" && return
		sleep 0.05
	done
	say "acpid did not open the power button ($event)"
}

case "$scenario" in
poweroff)
	report STARTED
	report READY
	say "payload done"
	report FINISHED 0
	power_off
	;;
exit-code)
	report STARTED
	report FINISHED 7
	power_off
	;;
error)
	report STARTED
	report ERROR 5 payload could not start
	power_off
	;;
reboot)
	report STARTED
	say "rebooting"
	reboot -f
	;;
panic)
	report STARTED
	say "panicking"
	echo c > /proc/sysrq-trigger
	;;
failure)
	report STARTED
	say "writing a failure reason"
	# No newline: the host takes the text as written. Closing the UART waits until it drained.
	printf 'MICRODROID_PAYLOAD_HAS_CHANGED|the payload changed since boot' > /dev/ttyS1
	power_off
	;;
serve)
	wait_for_power_button
	report STARTED
	report READY
	say "serving until the power button"
	;;
hang)
	# Hangs before Started: no report at all, and no power button handler either.
	say "hanging"
	;;
devices)
	report STARTED
	say "disk vda: $(head -n 1 /dev/vda)"
	echo "written by the guest" > /tmp/line
	dd if=/tmp/line of=/dev/vdb conv=notrunc 2>/dev/null
	sync
	echo "vmwarden-guest log line" > /dev/hvc2
	report FINISHED 0
	power_off
	;;
*)
	say "unknown scenario $scenario"
	printf 'MICRODROID_UNKNOWN_RUNTIME_ERROR|unknown scenario %s' "$scenario" > /dev/ttyS1
	power_off
	;;
esac

while true; do
	sleep 3600
done
