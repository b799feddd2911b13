// HTML built so that escaping is the default: the `html` template escapes
// every value put into it, except Html made by `html` itself. A value from
// the store (an owner, a note, a container id) can only ever become text.

/** Markup that is safe to send: built by `html`, or escaped. */
export class Html {
  constructor(readonly text: string) {}

  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A value as markup: Html as it is, lists joined, null, undefined and false as nothing, anything else escaped. */
function piece(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) {
    let out = '';
    for (const v of value) out += piece(v);
    return out;
  }
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** The template tag: literal parts as written, every value escaped unless it is Html. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Markup joined from parts (each escaped unless Html). */
export function join(parts: unknown[], separator = ''): Html {
  return new Html(parts.map(piece).join(separator));
}
