// The QEMU guest agent (qemu-ga) over its host-side chardev socket: freezes
// the guest's filesystems for the instant of the freeze transaction, so the
// point is application-consistent. Every step has a hard timeout; an agent
// that does not answer never holds the backup (or the guest) up: the point
// is then crash-consistent, and says so.
import { createConnection, type Socket } from 'node:net';

export const agentSyncMs = 3_000;
export const agentFreezeMs = 10_000;

export type Consistency = 'application' | 'crash';

export class GuestAgent {
  private buffered = '';
  private waiting: ((msg: Record<string, unknown>) => void) | null = null;

  private constructor(private readonly socket: Socket, readonly path: string) {
    socket.setEncoding('utf8');
    socket.on('data', (t: string) => {
      // guest-sync-delimited replies start with 0xFF to flush stale bytes.
      this.buffered += t.replace(/\u00ff|\ufffd/g, '');
      for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, nl).trim();
        this.buffered = this.buffered.slice(nl + 1);
        if (!line) continue;
        try { this.waiting?.(JSON.parse(line) as Record<string, unknown>); } catch { /* noise from a restarting agent */ }
      }
    });
    socket.on('error', () => undefined);
  }

  /** Connects and syncs; null (with the reason) when no agent answers in time. */
  static async open(path: string): Promise<{ agent: GuestAgent | null; problem?: string }> {
    const socket = await new Promise<Socket | string>((resolve) => {
      const s = createConnection({ path });
      const timer = setTimeout(() => { s.destroy(); resolve('connect timed out'); }, agentSyncMs);
      s.once('connect', () => { clearTimeout(timer); resolve(s); });
      s.once('error', (err) => { clearTimeout(timer); resolve(err.message); });
    });
    if (typeof socket === 'string') return { agent: null, problem: `cannot connect to the guest agent socket ${path}: ${socket}` };
    const agent = new GuestAgent(socket, path);
    const id = Math.floor(Math.random() * 2 ** 31);
    const reply = await agent.call('guest-sync-delimited', { id }, agentSyncMs, (m) => m.return === id);
    if (!reply.ok) { agent.close(); return { agent: null, problem: `the guest agent on ${path} did not answer guest-sync within ${agentSyncMs} ms (${reply.why})` }; }
    return { agent };
  }

  private call(command: string, args: Record<string, unknown> | undefined, ms: number, match: (m: Record<string, unknown>) => boolean = () => true): Promise<{ ok: true; value: unknown } | { ok: false; why: string }> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiting = null; resolve({ ok: false, why: 'timed out' }); }, ms);
      this.waiting = (m) => {
        if ('error' in m) { clearTimeout(timer); this.waiting = null; resolve({ ok: false, why: JSON.stringify((m.error as { desc?: string }).desc ?? m.error) }); return; }
        if (!match(m)) return;
        clearTimeout(timer);
        this.waiting = null;
        resolve({ ok: true, value: m.return });
      };
      this.socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
    });
  }

  /** Freezes the guest's filesystems; false (with why) if it did not within the hard timeout (then it thaws at once). */
  async freeze(): Promise<{ ok: boolean; why?: string }> {
    const r = await this.call('guest-fsfreeze-freeze', undefined, agentFreezeMs);
    if (r.ok) return { ok: true };
    await this.thaw();
    return { ok: false, why: `guest-fsfreeze-freeze: ${r.why} (after ${agentFreezeMs} ms)` };
  }

  async thaw(): Promise<void> {
    await this.call('guest-fsfreeze-thaw', undefined, agentFreezeMs);
  }

  close(): void {
    this.socket.destroy();
  }
}
