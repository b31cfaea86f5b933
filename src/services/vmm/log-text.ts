/** How much of a text from outside (the guest, the VMM) one log line carries. */
export const LOG_TEXT_MAX_CHARS = 1024;

const ESCAPES: Record<string, string> = {'\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\'};

// C0 controls, DEL, C1 controls, the Unicode line and paragraph separators and the bidirectional
// overrides: anything that could end a log line or make one read as another.
// eslint-disable-next-line no-control-regex -- matching control characters is this pattern's purpose
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\\]/g;

/**
 * Text from outside made safe for one log line: a guest must not be able to forge lines of its own.
 * Unsafe characters are escaped (`\n`, `\u001b`, ...; a backslash is doubled so the escapes are
 * unambiguous) and the text is cut at `maxChars`, saying how much was left out. The full text stays
 * in the death record.
 */
export function logText(text: string, maxChars = LOG_TEXT_MAX_CHARS): string {
	let kept = text.length > maxChars ? text.slice(0, maxChars) : text;
	// Do not end on half of a surrogate pair.
	if (kept.length < text.length && /[\ud800-\udbff]$/.test(kept)) {
		kept = kept.slice(0, -1);
	}

	const escaped = kept.replace(UNSAFE, character => ESCAPES[character] ?? `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
	return kept.length < text.length ? `${escaped}... (${text.length - kept.length} more characters)` : escaped;
}
