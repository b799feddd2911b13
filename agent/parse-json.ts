// JSON.parse for the agent's files, which may hold a store URL with its
// password (agent.json, network configs, attachment records). V8 quotes the
// text around some syntax errors; that excerpt never reaches a message.

/** Parses JSON text; a syntax error names what and where, never the text. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // "Unexpected token 'x', "…text…" is not valid JSON" is the one form that quotes; the others give a position
    if (err instanceof SyntaxError && / is not valid JSON$/s.test(err.message)) {
      throw new SyntaxError(`${err.message.startsWith('Unexpected token') ? 'Unexpected token' : 'Unexpected text'}: not valid JSON`);
    }
    throw err;
  }
}
