// A one-line progress bar on stderr, drawn only when stderr is a TTY
// (never in logs, pipes or CI), at most ten times a second.
import { humanBytes, humanRate, humanSeconds } from '../core/human.js';

export interface ProgressLine {
  update(done: number, total: number | null, extra?: string): void;
  done(): void;
}

/** unit: what is counted, when not bytes ("points", "packs"): then counts are shown, not sizes and rates. */
export function progressLine(label: string, enabled = Boolean(process.stderr.isTTY), unit?: string): ProgressLine {
  const started = Date.now();
  let last = 0;
  let drawn = false;
  return {
    update(done, total, extra) {
      const now = Date.now();
      if (!enabled || now - last < 100) return;
      last = now;
      const seconds = (now - started) / 1000;
      const rate = seconds > 0 ? done / seconds : 0;
      const width = 24;
      const share = total ? Math.min(1, done / total) : 0;
      const bar = total ? `[${'#'.repeat(Math.round(share * width)).padEnd(width, '.')}] ${(share * 100).toFixed(0).padStart(3)}%` : '';
      const eta = total && rate > 0 ? ` ETA ${humanSeconds((total - done) / rate)}` : '';
      const amount = unit ? `${done}${total ? ` / ${total}` : ''} ${unit}` : `${humanBytes(done)}${total ? ` / ${humanBytes(total)}` : ''} ${humanRate(done, seconds)}`;
      const text = `${label} ${bar} ${amount}${eta}${extra ? ` ${extra}` : ''}`;
      process.stderr.write(`\r\x1b[K${text.slice(0, (process.stderr.columns || 120) - 1)}`);
      drawn = true;
    },
    done() {
      if (drawn) process.stderr.write('\r\x1b[K');
    },
  };
}
