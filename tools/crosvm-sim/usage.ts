import type {FlagSpec} from './arguments.js';

/** argh-style usage text: a synopsis, a description and one line per flag. */
export function formatUsage(command: string, synopsis: string, description: string, flags: readonly FlagSpec[]): string {
	const names = flags.map(flag => `${flag.short === undefined ? '' : `${flag.short}, `}${flag.long}${flag.kind === 'switch' ? '' : ' <value>'}`);
	const width = Math.max(0, ...names.map(name => name.length));
	const lines = flags.map((flag, index) => `  ${names[index]!.padEnd(width)}  ${flag.description ?? ''}`.trimEnd());
	return [`Usage: ${command} ${synopsis}`, '', description, '', 'Options:', ...lines, `  ${'--help, help'.padEnd(width)}  display usage information`, ''].join('\n');
}
