import * as core from '@actions/core';
import { CdseAuthError } from '../auth/index.ts';

/** Fails the step with one line that says what to fix; a stack trace only in debug logs. */
export function failStep(error: unknown): void {
  if (error instanceof CdseAuthError) {
    core.setFailed(error.message);
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  core.setFailed(`cdse-auth failed unexpectedly: ${message}`);
  if (error instanceof Error && error.stack) core.debug(error.stack);
}
