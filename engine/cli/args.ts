// Argument parsing shared by the commands (node:util parseArgs), with the
// repository option and usage errors that name the offending argument.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BlockvaultError } from '../core/errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export const commonOptions: Options = {
  repo: { type: 'string', short: 'r' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export function parse(command: string, argv: string[], options: Options) {
  try {
    return parseArgs({ args: argv, options: { ...commonOptions, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new BlockvaultError('USAGE', `${parseErrorText(err as NodeJS.ErrnoException)} (see blockvault ${command} --help)`);
  }
}

/** node:util's parseArgs messages, reworded (its unknown-option text leaves a quote open). */
function parseErrorText(err: NodeJS.ErrnoException): string {
  const option = /'(-[^' ]*)/.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`;
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    return /does not take an argument/.test(err.message) ? `option ${option} takes no value` : `option ${option} needs a value`;
  }
  return err.message;
}

export function repoPath(values: Record<string, unknown>): string {
  const repo = (values.repo as string | undefined) ?? process.env.BLOCKVAULT_REPO;
  if (!repo) throw new BlockvaultError('USAGE', 'no repository given: use -r <path> or set BLOCKVAULT_REPO');
  return repo;
}

export function intOption(values: Record<string, unknown>, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new BlockvaultError('USAGE', `--${name} ${JSON.stringify(raw)}: expected a non-negative number`);
  return n;
}

/** Parses sizes like 64K, 128KiB, 4M, 256MiB, 1G (binary units). */
export function sizeOption(values: Record<string, unknown>, name: string, fallback: number): number {
  const raw = values[name] as string | undefined;
  if (raw === undefined) return fallback;
  const m = /^(\d+)\s*([KMG]?)(i?B)?$/i.exec(raw.trim());
  if (!m) throw new BlockvaultError('USAGE', `--${name} ${JSON.stringify(raw)}: expected a size such as 64K, 256KiB or 128M`);
  const scale = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * scale;
}

export function onePositional(command: string, positionals: string[], what: string): string {
  if (positionals.length !== 1) {
    throw new BlockvaultError('USAGE', `expected exactly one ${what}, got ${positionals.length} (see blockvault ${command} --help)`);
  }
  return positionals[0];
}
