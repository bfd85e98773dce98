import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const cliPath = fileURLToPath(new URL('../../dist/engine/cli/main.js', import.meta.url));

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs the built CLI as a user would; stdin from a file path or a buffer. */
export function cli(args: string[], options: { stdin?: Buffer | string; env?: Record<string, string>; stdoutFile?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...process.env, BLOCKVAULT_QUIET_NATIVE: '1', ...options.env },
      stdio: ['pipe', options.stdoutFile ?? 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    if (options.stdin !== undefined) child.stdin.end(options.stdin);
    else child.stdin.end();
  });
}

export async function cliJson<T = Record<string, unknown>>(args: string[], options?: Parameters<typeof cli>[1]): Promise<T> {
  const result = await cli([...args, '--json'], options);
  if (result.code !== 0) throw new Error(`blockvault ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** Waits (bounded) for a file to appear, as a pause point's `.reached`. */
export async function waitFile(path: string, ms = 60_000): Promise<void> {
  for (const end = Date.now() + ms; !existsSync(path); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end) throw new Error(`no ${path} within ${ms} ms`);
  }
}

/** At a run's pause point (BLOCKVAULT_TEST_PAUSE_AT=<event>:<pause>): waits for it, or fails with the run's stderr if the run ended first; does `act`; lets the run go on; returns how it ended. */
export async function atPause(pause: string, running: Promise<CliResult>, act: () => void | Promise<void>, ms = 120_000): Promise<CliResult> {
  try {
    await Promise.race([waitFile(`${pause}.reached`, ms), running.then((r) => { throw new Error(`the run ended before its pause: exit ${r.code}: ${r.stderr}`); })]);
    await act();
  } finally {
    writeFileSync(`${pause}.go`, '');
  }
  return running;
}
