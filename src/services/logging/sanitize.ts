/** The longest text a log line takes from outside by default; a guest's 50 KB failure text is cut. */
export const MAX_LOG_TEXT_LENGTH = 8192;

/** The shortest bound `sanitizeForLog` accepts: room for the truncation marker of any text. */
export const MIN_LOG_TEXT_LENGTH = 40;

// C0 controls (CR, LF, ESC, ...), DEL and C1 controls (a terminal obeys 0x9b as CSI), the Unicode
// line and paragraph separators, and the bidirectional overrides that reorder what a reader sees.
const UNSAFE_CLASS = '[\\u0000-\\u001F\\u007F-\\u009F\\u2028\\u2029\\u202A-\\u202E\\u2066-\\u2069]';
const UNSAFE_ANYWHERE = new RegExp(UNSAFE_CLASS, 'g');
const UNSAFE = new RegExp(`^${UNSAFE_CLASS}$`);

const NAMED: Readonly<Record<string, string>> = {'\n': '\\n', '\r': '\\r', '\t': '\\t'};

function escapeCharacter(character: string): string {
	return NAMED[character] ?? `\\u${character.codePointAt(0)!.toString(16).padStart(4, '0')}`;
}

function truncationMarker(dropped: number): string {
	return `…[${dropped} more characters]`;
}

/**
 * Makes text from outside (a guest, a VMM, a peer) safe inside one log line: control characters,
 * line separators and bidi overrides become visible escapes (`\n`, `\u001b`), so the text can
 * neither start a forged line nor drive the reader's terminal; and the result holds at most
 * `maxLength` characters, ending with a marker that counts the characters cut. Backslashes stay
 * as they are, so text that is already safe comes back unchanged: sanitizing twice changes nothing.
 */
export function sanitizeForLog(text: string, maxLength = MAX_LOG_TEXT_LENGTH): string {
	const bound = Math.max(maxLength, MIN_LOG_TEXT_LENGTH);
	// No more than `bound` characters of the text can be kept: never scan the rest.
	const head = text.slice(0, bound);
	const escaped = head.replaceAll(UNSAFE_ANYWHERE, escapeCharacter);
	if (head.length === text.length && escaped.length <= bound) {
		return escaped;
	}

	// The marker for the whole text is the longest one this text can need.
	const budget = bound - truncationMarker(text.length).length;
	let kept = '';
	let consumed = 0;
	// By code point: a surrogate pair is kept or cut whole, an escape is never cut.
	for (const character of head) {
		const piece = UNSAFE.test(character) ? escapeCharacter(character) : character;
		if (kept.length + piece.length > budget) {
			break;
		}

		kept += piece;
		consumed += character.length;
	}

	return kept + truncationMarker(text.length - consumed);
}
