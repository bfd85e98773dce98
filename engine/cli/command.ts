// What every CLI command provides, and the output and interrupt helpers they share.
/** A command module's export. run() returns the exit code. (Its one-line summary lives in main.ts's table.) */
export interface Command {
  name: string;
  help: string;
  run(argv: string[]): Promise<number>;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}

export function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

let interruptController: AbortController | null = null;

/**
 * A command that must clean up when interrupted (remove a partial file, drop
 * an unsealed pack, unmount) asks for this signal and watches it. The first
 * SIGINT/SIGTERM/SIGHUP then aborts it, with the signal's name as the reason,
 * and the command winds down by itself; a command that never asked is ended
 * at once (nothing it does can be left half-committed: see docs/FORMAT.md).
 */
export function interruptSignal(): AbortSignal {
  interruptController ??= new AbortController();
  return interruptController.signal;
}

/** Called by main on a signal: true when a command took it (and will clean up). */
export function deliverInterrupt(signal: NodeJS.Signals): boolean {
  if (!interruptController || interruptController.signal.aborted) return false;
  interruptController.abort(signal);
  return true;
}

/**
 * Test hook: BLOCKVAULT_TEST_INTERRUPT_AT_BYTES=<n> makes a command send
 * itself a real SIGINT once its progress passes n bytes, so tests can
 * interrupt a backup or restore in the middle, whatever the machine's speed.
 */
export function testInterruptHook(): (bytesDone: number) => void {
  const at = Number(process.env.BLOCKVAULT_TEST_INTERRUPT_AT_BYTES);
  let sent = !Number.isFinite(at) || at <= 0;
  return (bytesDone) => {
    if (sent || bytesDone < at) return;
    sent = true;
    process.kill(process.pid, 'SIGINT');
  };
}

/**
 * Test hook: with BLOCKVAULT_TEST_EXCLUSIVE_PROBE=<file>, a command holding
 * the exclusive lock appends "enter <pid>", holds it for
 * BLOCKVAULT_TEST_EXCLUSIVE_HOLD_MS (default 200), then appends "leave <pid>",
 * so a test can see that no two holders ever overlap.
 */
export async function testExclusiveProbe(): Promise<void> {
  const file = process.env.BLOCKVAULT_TEST_EXCLUSIVE_PROBE;
  if (!file) return;
  const { appendFileSync } = await import('node:fs');
  appendFileSync(file, `enter ${process.pid}\n`);
  await new Promise((r) => setTimeout(r, Number(process.env.BLOCKVAULT_TEST_EXCLUSIVE_HOLD_MS ?? 200)));
  appendFileSync(file, `leave ${process.pid}\n`);
}
