import { createInterface } from 'node:readline';

/** Asks on the terminal; a hidden answer is not echoed (passwords). Prompts go to stderr. */
export function ask(question: string, { hidden = false } = {}): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  if (hidden) {
    // readline echoes through this method; after the question, echo nothing.
    const internals = rl as unknown as { _writeToOutput: (text: string) => void };
    let asked = false;
    internals._writeToOutput = (text: string) => {
      if (!asked || text === '\r\n' || text === '\n') process.stderr.write(text);
      asked = true;
    };
  }
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      if (hidden) process.stderr.write('\n');
      rl.close();
      resolve(answer.trim());
    });
  });
}
