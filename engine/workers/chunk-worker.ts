// Worker thread entry: receives WorkRequests, replies with transfers.
import { parentPort } from 'node:worker_threads';
import { initDigests } from '../core/digest.js';
import { compressChunks, decodeChunks, hashChunks, registerSlab, slabCompress, slabHash, unregisterSlab } from './chunk-work.js';
import type { WorkRequest } from './messages.js';

const port = parentPort;
if (!port) throw new Error('chunk-worker must run in a worker thread');
const ready = initDigests();

port.on('message', async (msg: { seq: number; req: WorkRequest }) => {
  await ready;
  try {
    const { req } = msg;
    if (req.op === 'hash') {
      const reply = hashChunks(req);
      port.postMessage({ seq: msg.seq, reply }, [reply.data, reply.ids]);
    } else if (req.op === 'compress') {
      const reply = compressChunks(req);
      port.postMessage({ seq: msg.seq, reply }, [reply.data, reply.payloads]);
    } else if (req.op === 'decode') {
      const reply = decodeChunks(req);
      port.postMessage({ seq: msg.seq, reply }, reply.output ? [reply.output, reply.input] : [reply.input]);
    } else if (req.op === 'slab-hash') {
      port.postMessage({ seq: msg.seq, reply: slabHash(req) });
    } else if (req.op === 'slab-compress') {
      port.postMessage({ seq: msg.seq, reply: slabCompress(req) });
    } else if (req.op === 'unslab') {
      unregisterSlab(req.id);
      port.postMessage({ seq: msg.seq, reply: {} });
    } else {
      registerSlab(req.id, req.slab);
      port.postMessage({ seq: msg.seq, reply: {} });
    }
  } catch (err) {
    port.postMessage({ seq: msg.seq, error: String((err as Error)?.stack ?? err) });
  }
});
