#!/usr/bin/env node
// blockvault command-line entry: dispatches to a command, maps errors to
// exit codes (BlockvaultError) or crashes loudly (bugs).
import { readFileSync } from 'node:fs';
import { AssertionError, BlockvaultError } from '../core/errors.js';
import { initDigests } from '../core/digest.js';
import { backupCommand } from './commands/backup.js';
import { indexCommand } from './commands/index-cmd.js';
import { initCommand } from './commands/init.js';
import { listCommand } from './commands/list.js';
import { restoreCommand } from './commands/restore.js';
import { statsCommand } from './commands/stats.js';
import { verifyCommand } from './commands/verify.js';
import { interruptHandlerFor, type Command } from './command.js';
import { mountCommand, umountCommand } from './commands/mount.js';
import { filesCommand } from './commands/files.js';
import { bootCommand } from './commands/boot.js';
import { benchCommand } from './commands/bench.js';

const commands: Command[] = [initCommand, backupCommand, listCommand, restoreCommand, verifyCommand, statsCommand, mountCommand, umountCommand, filesCommand, bootCommand, benchCommand, indexCommand];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `blockvault: deduplicating, block-level backups of virtual-machine disks

Usage: blockvault <command> [options]     (blockvault <command> --help for more)

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

A first run:
  blockvault init   -r /srv/bv
  blockvault backup -r /srv/bv --vm web01 --disk sda /var/lib/libvirt/images/web01.raw
  blockvault list   -r /srv/bv
  blockvault restore -r /srv/bv web01/sda@latest /tmp/web01.raw
  blockvault verify -r /srv/bv

Set BLOCKVAULT_REPO to skip -r. Exit codes: 0 ok, 1 usage or bad input,
2 data integrity problem, 3 repository locked or unavailable, 4 I/O error
(source, target or disk full), 70 internal error (a bug: please report it).`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const topic = commands.find((c) => c.name === rest[0]);
    process.stdout.write(`${topic ? topic.help : usage()}\n`);
    return 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`blockvault ${version()}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`blockvault: unknown command ${JSON.stringify(name)}\n\n${usage()}\n`);
    return 1;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.help}\n`);
    return 0;
  }
  await initDigests();
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof BlockvaultError) {
      process.stderr.write(`blockvault ${name}: ${err.message} [${err.code}]\n`);
      if (rest.includes('--json')) process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message } })}\n`);
      return err.exitCode;
    }
    const kind = err instanceof AssertionError ? 'internal error' : 'unexpected error';
    process.stderr.write(`blockvault ${name}: ${kind} (a bug; please report it):\n${(err as Error)?.stack ?? String(err)}\n`);
    return 70;
  }
}

// Interrupted: exit at once (exit handlers release the writer lock). Whatever a
// backup had not committed stays unreferenced in tmp/ and is removed by the next writer.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    const handler = interruptHandlerFor();
    if (handler) {
      void handler().finally(() => process.exit(0));
      return;
    }
    process.stderr.write(`\nblockvault: interrupted (${signal}); nothing partial was committed\n`);
    process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const)[signal]);
  });
}

// Exit explicitly once the command is done (it has awaited its own cleanup;
// stdout and stderr writes are synchronous on Linux): after an unmount,
// fuse-native leaves a native handle that would keep the process alive.
main(process.argv.slice(2)).then((code) => process.exit(code));
