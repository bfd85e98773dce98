// A real running QEMU (TCG) for the running-VM backup tests: qcow2 disks on
// -drive (named <disk>-drive, so HMP qemu-io writes go through the guest's
// own BlockBackend and so through any copy-before-write filter), a QMP
// socket for blockvault and a second one for the test, and optionally a
// guest-agent channel with no agent behind it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QmpClient } from '../../engine/qmp/client.js';

export interface VmDiskSpec { name: string; file: string }

export interface TestVm {
  qmpPath: string;
  agentPath: string;
  qmp: QmpClient;
  proc: ChildProcess;
  /** Writes `length` bytes of `pattern` at `offset` through the guest's drive, as the guest would. */
  write(disk: string, pattern: number, offset: number, length: number): Promise<void>;
  /** Flushes and reads the disk as the guest sees it now (raw bytes). */
  capture(disk: string, out: string): Promise<Buffer>;
  /** The blockvault bitmaps on a disk: name -> recording. */
  bitmaps(disk: string): Promise<Record<string, boolean>>;
  stop(): Promise<void>;
}

async function waitFor(what: string, ok: () => boolean, ms: number, proc: ChildProcess, log: () => string): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 50))) {
    if (proc.exitCode !== null) throw new Error(`QEMU exited before ${what}: ${log()}`);
    if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms: ${log()}`);
  }
}

export async function startVm(dir: string, disks: VmDiskSpec[], options: { memory?: string; agent?: boolean; name?: string } = {}): Promise<TestVm> {
  const qmpPath = join(dir, 'vm.qmp');
  const testQmp = join(dir, 'test.qmp');
  const agentPath = join(dir, 'vm.qga');
  const logPath = join(dir, 'qemu.log');
  const args = ['-accel', 'tcg', '-nodefaults', '-display', 'none', '-machine', 'pc', '-m', options.memory ?? '256', '-no-shutdown', '-name', options.name ?? 'web01',
    '-serial', `file:${logPath}`,
    '-qmp', `unix:${qmpPath},server=on,wait=off`, '-qmp', `unix:${testQmp},server=on,wait=off`];
  for (const d of disks) args.push('-drive', `file=${d.file},if=none,id=${d.name}-drive,format=qcow2,node-name=${d.name}-fmt`, '-device', `virtio-blk-pci,drive=${d.name}-drive,id=${d.name}`);
  if (options.agent) args.push('-chardev', `socket,path=${agentPath},server=on,wait=off,id=qga0`, '-device', 'virtio-serial', '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0');
  const proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (b) => (stderr += b));
  const log = () => stderr;
  try {
    await waitFor('QMP sockets', () => existsSync(qmpPath) && existsSync(testQmp), 30_000, proc, log);
    const qmp = await QmpClient.connect(testQmp, 30_000);
    const hmp = (line: string) => qmp.execute<string>('human-monitor-command', { 'command-line': line }, 60_000);
    return {
      qmpPath, agentPath, qmp, proc,
      async write(disk, pattern, offset, length) {
        const out = await hmp(`qemu-io ${disk}-drive "write -P ${pattern} ${offset} ${length}"`);
        if (out.trim() !== '' && !/wrote/.test(out)) throw new Error(`qemu-io write on ${disk}: ${out}`); // HMP qemu-io prints nothing back on success
      },
      async capture(disk, out) {
        await hmp(`qemu-io ${disk}-drive "flush"`);
        const file = disks.find((d) => d.name === disk)!.file;
        execFileSync('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', file, out]);
        return readFileSync(out);
      },
      async bitmaps(disk) {
        // By node: while a copy-before-write filter sits above the disk, query-block shows the filter instead.
        const nodes = await qmp.execute<Array<{ 'node-name': string; 'dirty-bitmaps'?: Array<{ name?: string; recording: boolean }> }>>('query-named-block-nodes', { flat: true });
        const n = nodes.find((x) => x['node-name'] === `${disk}-fmt`);
        return Object.fromEntries((n?.['dirty-bitmaps'] ?? []).filter((m) => m.name?.startsWith('blockvault-')).map((m) => [m.name, m.recording]));
      },
      async stop() {
        qmp.close();
        await killQemu(proc);
      },
    };
  } catch (err) {
    await killQemu(proc);
    throw err;
  }
}

export async function killQemu(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('close', r));
  proc.kill('SIGKILL');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
}

/** A fresh qcow2 of `size` bytes (or the raw `from` image converted). */
export function qcow2(path: string, size: number | { from: string }): string {
  if (typeof size === 'number') execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(size)]);
  else execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', size.from, path]);
  return path;
}

/** The serial console log (the boot fixture prints its marker there). */
export function serialLog(dir: string): string {
  return existsSync(join(dir, 'qemu.log')) ? readFileSync(join(dir, 'qemu.log'), 'utf8') : '';
}
