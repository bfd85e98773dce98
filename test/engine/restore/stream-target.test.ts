// Restore to a pipe whose reader is slower than we are (| ssh, | gzip, | pv):
// the target must wait for the pipe to drain, not sleep on a timer and retry.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StreamTarget } from '../../../engine/restore/target.js';

const MiB = 1024 * 1024;
const realSetTimeout = setTimeout;

describe('StreamTarget', () => {
  afterEach(() => { vi.useRealTimers(); });

  it('writes every byte in order into a pipe that fills up, waiting on the pipe and not on timers', async () => {
    // The reader holds off for a moment, so the (non-blocking) pipe fills and every write must wait.
    const reader = spawn('sh', ['-c', 'sleep 0.3; sha256sum'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      let digest = '';
      reader.stdout!.on('data', (d) => (digest += d));
      const closed = new Promise((r) => reader.on('close', r));
      // With timers frozen, a target that polls on setTimeout never finishes; one that waits for the pipe does.
      vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'setImmediate'] });
      const target = new StreamTarget(reader.stdin!, 'the pipe');
      const expected = createHash('sha256');
      const piece = Buffer.alloc(4 * MiB);
      const work = (async () => {
        for (let i = 0; i < 8; i++) {
          piece.fill(i + 1);
          expected.update(piece);
          await target.write(piece, i * 2 * piece.length); // every other piece is a hole: written as zeros
          expected.update(Buffer.alloc(i < 7 ? piece.length : 0));
        }
        await target.finish(15 * piece.length);
      })();
      const outcome = await Promise.race([work.then(() => 'done'), new Promise((r) => realSetTimeout(() => r('hung on a timer'), 20_000))]);
      vi.useRealTimers();
      expect(outcome).toBe('done');
      reader.stdin!.end();
      await closed;
      expect(digest.split(' ')[0]).toBe(expected.digest('hex'));
    } finally {
      vi.useRealTimers();
      reader.kill('SIGKILL');
    }
  });

  it('fails with the reader gone (EPIPE) as an I/O error naming the target', async () => {
    const reader = spawn('true', [], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      await new Promise((r) => reader.on('close', r));
      reader.stdin!.on('error', () => undefined);
      const target = new StreamTarget(reader.stdin!, 'the pipe');
      await expect(target.write(Buffer.alloc(4 * MiB), 0)).rejects.toMatchObject({ code: 'TARGET_IO', message: expect.stringMatching(/the pipe: its reader closed the pipe \(EPIPE\)/) });
    } finally {
      reader.kill('SIGKILL');
    }
  });
});
