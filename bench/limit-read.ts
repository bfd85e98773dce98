// A machine limit for the cold benchmark: reads byte ranges of a file with
// plain preads, `inflight` at a time, sorted and with adjacent ranges merged,
// and nothing else. Its whole-process wall time (node start included) is the
// floor for a changed-block-tracking increment that reads those ranges.
// Run: node dist/bench/limit-read.js <file> <ranges.json [[start, length], ...]> <inflight>
import { closeSync, openSync, read, readFileSync } from 'node:fs';

const [file, rangesFile, inflightArg] = process.argv.slice(2);
const inflight = Math.max(1, Number(inflightArg ?? 1));
const ranges = (JSON.parse(readFileSync(rangesFile, 'utf8')) as Array<[number, number]>).sort((a, b) => a[0] - b[0]);
const fd = openSync(file, 'r');
let next = 0;
let bytes = 0;
async function lane(): Promise<void> {
  const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
  while (next < ranges.length) {
    const [start, length] = ranges[next++];
    for (let at = 0; at < length; at += buffer.length) {
      const n = Math.min(buffer.length, length - at);
      bytes += await new Promise<number>((resolve, reject) => read(fd, buffer, 0, n, start + at, (err, got) => (err ? reject(err) : resolve(got))));
    }
  }
}
await Promise.all(Array.from({ length: inflight }, lane));
closeSync(fd);
process.stdout.write(`${bytes}\n`);
