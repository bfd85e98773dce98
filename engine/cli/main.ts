#!/usr/bin/env node
// blockvault command-line entry: dispatches to a command, maps errors to
// exit codes (BlockvaultError) or crashes loudly (bugs).
// Commands are imported only when run: `--version`, `--help` and each
// command load nothing of the others (LMDB, FUSE, workers, the bench library).
import { readFileSync } from 'node:fs';
import { AssertionError, BlockvaultError } from '../core/errors.js';
import { deliverInterrupt, type Command } from './command.js';
import { phase, writePhases } from '../core/phases.js';

interface Entry { name: string; summary: string; load: () => Promise<Command> }

const commands: Entry[] = [
  { name: 'init', summary: 'create a new, empty repository', load: async () => (await import('./commands/init.js')).initCommand },
  { name: 'backup', summary: 'back up a VM disk (raw image, block device, NBD export or stdin)', load: async () => (await import('./commands/backup.js')).backupCommand },
  { name: 'list', summary: 'list restore points, newest first', load: async () => (await import('./commands/list.js')).listCommand },
  { name: 'restore', summary: 'write a restore point back out as a raw disk image', load: async () => (await import('./commands/restore.js')).restoreCommand },
  { name: 'verify', summary: 'check that restore points can be restored, bit for bit', load: async () => (await import('./commands/verify.js')).verifyCommand },
  { name: 'check', summary: "check the repository's structure (and with --read-data, its data)", load: async () => (await import('./commands/check.js')).checkCommand },
  { name: 'stats', summary: 'logical versus stored bytes, dedup and compression ratios', load: async () => (await import('./commands/stats.js')).statsCommand },
  { name: 'mount', summary: 'browse every restore point as files: whole disks, partitions, files', load: async () => (await import('./commands/mount.js')).mountCommand },
  { name: 'umount', summary: 'unmount a blockvault mount (also cleans up a stale one)', load: async () => (await import('./commands/umount.js')).umountCommand },
  { name: 'files', summary: 'list or copy out files of a restore point, without mounting', load: async () => (await import('./commands/files.js')).filesCommand },
  { name: 'boot', summary: 'instant recovery: boot a restore point in QEMU straight from the backup', load: async () => (await import('./commands/boot.js')).bootCommand },
  { name: 'bench', summary: "measure this machine's backup hot paths (and a repository's storage)", load: async () => (await import('./commands/bench.js')).benchCommand },
  { name: 'forget', summary: 'remove restore points by a retention policy (--keep-daily 14 ...) or by name', load: async () => (await import('./commands/forget.js')).forgetCommand },
  { name: 'gc', summary: 'reclaim the space of data no restore point needs (beside running backups)', load: async () => (await import('./commands/gc.js')).gcCommand },
  { name: 'prune', summary: 'forget by a retention policy, then gc, in one command', load: async () => (await import('./commands/prune.js')).pruneCommand },
  { name: 'protect', summary: 'keep restore points from ever being forgotten', load: async () => (await import('./commands/protect.js')).protectCommand },
  { name: 'unprotect', summary: 'lift the protection of restore points', load: async () => (await import('./commands/protect.js')).unprotectCommand },
  { name: 'upgrade', summary: 'upgrade a repository of an older format version in place', load: async () => (await import('./commands/upgrade.js')).upgradeCommand },
  { name: 'repair', summary: 'rebuild the index from the packs alone, salvaging torn packs', load: async () => (await import('./commands/repair.js')).repairCommand },
  { name: 'index', summary: 'rebuild the LMDB index from the packs and restore points', load: async () => (await import('./commands/index-cmd.js')).indexCommand },
];

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
2 data integrity problem, 3 repository locked or unavailable (or the VM
busy with another backup), 4 I/O error (source, target or disk full),
5 --cbt-check refused an increment, 6 the hypervisor refused or went away,
130 interrupted (after cleaning up), 70 internal error (a bug: please report it).`;
}

export async function main(argv: string[]): Promise<number> {
  phase('main');
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const topic = commands.find((c) => c.name === rest[0]);
    process.stdout.write(`${topic ? (await topic.load()).help : usage()}\n`);
    return 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`blockvault ${version()}\n`);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`blockvault: unknown command ${JSON.stringify(name)}\n\n${usage()}\n`);
    return 1;
  }
  const command = await entry.load();
  phase('command-loaded');
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.help}\n`);
    return 0;
  }
  try {
    const { initDigests } = await import('../core/digest.js');
    await initDigests();
    phase('digests-ready');
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

const signalNumbers = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
/** How long a command may take to clean up after an interrupt before the process ends anyway. */
const interruptCleanupMs = 15_000;

// Interrupted: a command that asked for interrupts (command.ts) cleans up and
// exits by itself; a second signal, or a cleanup that takes too long, ends the
// process at once. Any other command ends at once: what it had not committed
// is never referenced (tmp/ is cleared by the next writer).
for (const signal of Object.keys(signalNumbers) as Array<keyof typeof signalNumbers>) {
  process.on(signal, () => {
    const code = 128 + signalNumbers[signal];
    if (deliverInterrupt(signal)) {
      setTimeout(() => process.exit(code), interruptCleanupMs).unref();
      return;
    }
    process.stderr.write(`\nblockvault: interrupted (${signal})\n`);
    process.exit(code);
  });
}

// A reader that went away (`blockvault list | head -1`, `backup 2>&1 | head -2`)
// ends our output, not the command: what the command did still stands, and
// its exit code says how it went. (Restore to stdout sees the error itself.)
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') process.exitCode = 4;
  });
}

// Exit explicitly once the command is done (it has awaited its own cleanup;
// stdout and stderr writes are synchronous on Linux): after an unmount,
// fuse-native leaves a native handle that would keep the process alive.
main(process.argv.slice(2)).then((code) => {
  const exit = process.exitCode && code === 0 ? Number(process.exitCode) : code;
  writePhases(process.argv[2] ?? '', exit);
  process.exit(exit);
});
