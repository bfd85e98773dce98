// Runs a command under GNU time: wall seconds and peak RSS, with optional
// stdin/stdout files. The machine is shared and noisy: callers repeat runs
// and quote medians, and compare tools measured in the same run.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

export interface Measured { seconds: number; rssBytes: number; stdout: string }

export async function measure(cmd: string, args: string[], options: { stdin?: string; stdoutFile?: string; env?: Record<string, string> } = {}): Promise<Measured> {
  execFileSync('sync');
  const timeFile = join(tmpdir(), `bv-time-${process.pid}-${Date.now()}`);
  const stdin = options.stdin ? openSync(options.stdin, 'r') : 'ignore';
  const stdout = options.stdoutFile ? openSync(options.stdoutFile, 'w') : 'pipe';
  const child = spawn('/usr/bin/time', ['-o', timeFile, '-f', '%e %M', cmd, ...args], {
    stdio: [stdin, stdout, 'pipe'], env: { ...process.env, ...options.env },
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (typeof stdin === 'number') closeSync(stdin);
  if (typeof stdout === 'number') closeSync(stdout);
  const [seconds, rssKb] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
  rmSync(timeFile, { force: true });
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`);
  return { seconds, rssBytes: rssKb * 1024, stdout: out };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function duBytes(path: string): number {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split(/\s+/)[0]);
}
