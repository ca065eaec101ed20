import { CdseAuthError } from '../auth/index.ts';
import { oneLine } from '../auth/redact.ts';
import type { Runner } from './runner.ts';

/**
 * Fails the step with one line that says what to fix (the error's message and hint); a stack
 * trace only in debug logs. Whatever an error carries, the line cannot start a second command.
 */
export function failStep(runner: Runner, error: unknown): void {
  if (error instanceof CdseAuthError) {
    runner.setFailed(oneLine([error.message, error.hint].filter(Boolean).join(' ')));
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  runner.setFailed(`cdse-auth failed unexpectedly: ${oneLine(message, 300)}`);
  if (error instanceof Error && error.stack) runner.debug(oneLine(error.stack));
}
