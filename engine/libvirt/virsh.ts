// libvirt through `virsh`: the one client every libvirt host has, speaking
// every transport the user's --connect URI names (the socket's RPC is XDR
// over a protocol of thousands of calls; no npm library covers it without
// native code). Every call has a timeout and its stderr in the error.
import { execFile } from 'node:child_process';
import { BlockvaultError } from '../core/errors.js';

export const virshMsDefault = 60_000;

export class Virsh {
  constructor(readonly uri: string) {}

  run(args: string[], ms = virshMsDefault, input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile('virsh', ['-q', '-c', this.uri, ...args], { timeout: ms, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        if (e.code === 'ENOENT') return reject(new BlockvaultError('USAGE', 'cannot run virsh: install libvirt-clients for --libvirt'));
        const why = e.killed ? `no answer within ${ms} ms` : (stderr.trim().replace(/^error: /gm, '') || err.message);
        reject(new BlockvaultError('HYPERVISOR', `libvirt ${this.uri}: virsh ${args[0]}${args[1] ? ` ${args[1]}` : ''}: ${why}`));
      });
      if (input !== undefined) child.stdin?.end(input);
    });
  }
}
