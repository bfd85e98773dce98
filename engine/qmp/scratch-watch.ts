// Watches the fleecing directory while a backup reads: QEMU 7.2's
// copy-before-write filter fails the *guest's* write when it cannot copy
// the old data aside, so the backup must stop (and its teardown remove the
// filter) before the fleecing images fill the disk, not after.
import { statfs } from 'node:fs/promises';

/** Free bytes below which the backup stops. */
export const scratchFreeBytesMin = 64 * 1024 * 1024;
export const scratchWatchMs = 250;

export interface ScratchWatch { signal: AbortSignal; fired(): number | null; stop(): void }

/** An AbortSignal that aborts with `outer`, or when `dir` has less than scratchFreeBytesMin free (fired() says how much was left). */
export function watchScratch(dir: string, outer: AbortSignal | undefined): ScratchWatch {
  const controller = new AbortController();
  let left: number | null = null;
  const onOuter = () => controller.abort(outer!.reason);
  if (outer?.aborted) onOuter();
  else outer?.addEventListener('abort', onOuter, { once: true });
  let busy = false;
  const look = () => {
    if (busy || controller.signal.aborted) return;
    busy = true;
    statfs(dir).then((st) => {
      const free = st.bavail * st.bsize;
      if (free < scratchFreeBytesMin && !controller.signal.aborted) { left = free; controller.abort('scratch space low'); }
    }, () => undefined).finally(() => { busy = false; });
  };
  look(); // at once too: a short backup may be done before the first interval
  const timer = setInterval(look, scratchWatchMs);
  timer.unref();
  return {
    signal: controller.signal,
    fired: () => left,
    stop: () => { clearInterval(timer); outer?.removeEventListener('abort', onOuter); },
  };
}
