import {ValueError} from './failures.js';

function hex(text: string, component: string, maximum: number): number {
	if (!/^\+?[\da-f]+$/i.test(text)) {
		throw new ValueError(`${component} failed to parse as hex`);
	}

	const value = Number.parseInt(text, 16);
	if (value > maximum) {
		throw new ValueError(`${component} out of range`);
	}

	return value;
}

/**
 * crosvm's `PciAddress::from_str` (resources/src/pci_address.rs at f1e797a68):
 * `[domain:]bus:device.function` in hex; domain 0, bus up to ff, device up to 1f, function up to 7.
 */
export function checkPciAddress(address: string): void {
	const dot = address.lastIndexOf('.');
	if (dot === -1) {
		throw new ValueError('Missing delimiter between Device and Function');
	}

	hex(address.slice(dot + 1), 'Function', 0x7);
	const rest = address.slice(0, dot);
	const colon = rest.lastIndexOf(':');
	if (colon === -1) {
		throw new ValueError('Missing delimiter between Bus and Device');
	}

	hex(rest.slice(colon + 1), 'Device', 0x1f);
	const busDomain = rest.slice(0, colon);
	const split = busDomain.lastIndexOf(':');
	const [domain, bus] = split === -1 ? ['0', busDomain] : [busDomain.slice(0, split), busDomain.slice(split + 1)];
	hex(bus, 'Bus', 0xff);
	if (domain.includes(':')) {
		throw new ValueError('Too many components in PCI address');
	}

	hex(domain, 'Domain', 0);
}
