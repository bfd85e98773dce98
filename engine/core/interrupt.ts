// Interrupts as the engine sees them: an AbortSignal whose reason is the
// signal's name (SIGINT, SIGTERM, SIGHUP), aborted by the CLI.
import { BlockvaultError } from './errors.js';

/** The error a pipeline throws once it has cleaned up after an interrupt. */
export function interruptedError(signal: AbortSignal, what: string): BlockvaultError {
  return new BlockvaultError('INTERRUPTED', `interrupted (${String(signal.reason)}): ${what}`);
}

/** Resolves when `signal` aborts (never, without one). */
export function whenAborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!signal) return;
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
