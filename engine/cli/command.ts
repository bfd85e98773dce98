// What every CLI command provides. run() returns the exit code.
export interface Command {
  name: string;
  summary: string;
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

let interruptHandler: (() => Promise<void>) | null = null;

/** A long-running command (mount) that must clean up on Ctrl-C / SIGTERM registers here. */
export function onInterrupt(handler: (() => Promise<void>) | null): void {
  interruptHandler = handler;
}

export function interruptHandlerFor(): (() => Promise<void>) | null {
  return interruptHandler;
}
