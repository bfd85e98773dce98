// How much of a file is in the page cache right now (util-linux fincore).
import { execFileSync } from 'node:child_process';

export function residentBytes(path: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim());
}
