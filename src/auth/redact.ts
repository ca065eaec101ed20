/** Removes every known secret from a text before it can reach a message, a field or a log. */
export type Redact = (text: string) => string;

const lowerHex = (s: string) => s.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase());

/**
 * The forms a secret takes when a server echoes it back: raw; percent-encoded as by
 * `encodeURIComponent` and `encodeURI`; form-encoded (`+` for space), each with upper or lower
 * case hex; and JSON-escaped, with or without `\uXXXX` escapes for non-ASCII (as Python and Java
 * serialisers write it).
 */
export function secretForms(secret: string): string[] {
  const form = new URLSearchParams({ s: secret }).toString().slice(2);
  const json = JSON.stringify(secret).slice(1, -1);
  const asciiJson = json.replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  // A lone surrogate has no percent-encoding (URIError); its other forms still count.
  const encoded = [encodeURIComponent, encodeURI].flatMap((encode) => {
    try {
      return [encode(secret)];
    } catch {
      return [];
    }
  });
  encoded.push(form);
  const forms = new Set([secret, json, asciiJson, ...encoded, ...encoded.map(lowerHex)]);
  // Longest first, so a form that contains another is replaced whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

// A short value (a 1-3 character password) would blank out ordinary words: such a secret is
// too weak to protect anyway, and the runner's mask still covers it in the log.
const MIN_SECRET_LENGTH = 4;

/** A `Redact` over the secrets `secrets()` lists at the time of the call. */
export function redactor(secrets: () => Iterable<string | undefined>): Redact {
  return (text) => {
    let out = text;
    const forms = [...secrets()]
      .filter((secret): secret is string => !!secret && secret.length >= MIN_SECRET_LENGTH)
      .flatMap(secretForms);
    // Until nothing is left: the `***` put in can complete a secret that itself holds `*`s. It
    // ends, since every form is longer than what replaces it.
    for (let changed = true; changed; ) {
      changed = false;
      for (const form of forms) {
        if (!out.includes(form)) continue;
        out = out.split(form).join('***');
        changed = true;
      }
    }
    return out;
  };
}

const MAX_SERVER_TEXT = 200;

/**
 * One printable line that cannot be read as a runner command (`::name::` at a line start, or the
 * legacy `##[name]` form, which the runner honours anywhere in a line), at most `max` characters.
 */
export function oneLine(text: string, max = 2000): string {
  const line = text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(/:{2,}/g, ':')
    .replace(/#{2,}\[/g, '#[')
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max)}...` : line;
}

/** Server-provided text for a message: secrets redacted first, so no cut can keep part of one. */
export function serverText(text: string | undefined, redact: Redact): string | undefined {
  if (!text) return undefined;
  return oneLine(redact(text), MAX_SERVER_TEXT) || undefined;
}
