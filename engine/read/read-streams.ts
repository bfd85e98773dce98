// Sequential-read detection for the random-access reader behind the mount,
// `files` and `boot`. The kernel's readahead requests reach us through
// several FUSE threads, so one sequential reader's requests arrive slightly
// out of order, and several readers (a VM booting, a copy of another file)
// interleave. A read therefore joins the stream whose end it lands near,
// not the one it continues exactly; up to streamsMax streams are tracked.
// Pure: offsets in, chunk ranges to prefetch out.

/** How far from a stream's end (either way) a read may land and still continue it. */
export const streamSlackBytes = 4 * 1024 * 1024;
export const streamsMax = 8;

interface Stream {
  /** Highest byte end read so far. */
  endBytes: number;
  /** Prefetch window in chunks; doubles while the stream continues. */
  windowChunks: number;
  /** Chunks below this index were already prefetched for this stream. */
  prefetchedEnd: number;
  usedAt: number;
}

/** Chunks to prefetch, first..last inclusive; none when first > last. */
export interface PrefetchRange { first: number; last: number }

export class ReadStreams {
  private readonly streams: Stream[] = [];
  private clock = 0;

  constructor(private readonly chunkBytes: number, private readonly chunkCount: number,
    private readonly windowChunksMax: number, private readonly strideChunks: number) {}

  /**
   * Records a read of [offsetBytes, endBytes) and says what to prefetch.
   * Prefetch goes out in strides of at least strideChunks, so batches stay
   * large (one pack read and one worker message for many chunks, not a
   * chunk or two per 128 KiB FUSE request) and several are in flight.
   */
  onRead(offsetBytes: number, endBytes: number): PrefetchRange {
    const lastRead = Math.floor((endBytes - 1) / this.chunkBytes);
    const stream = this.match(offsetBytes);
    if (!stream && offsetBytes === 0) {
      // A read from the very start of a disk (dd, cp, a VM's first sector) nearly always goes on:
      // prefetch one stride at once, so the first MiBs read cold run at the streaming rate.
      const to = Math.min(this.chunkCount - 1, lastRead + this.strideChunks);
      this.remember({ endBytes, windowChunks: this.strideChunks, prefetchedEnd: to + 1, usedAt: ++this.clock });
      return { first: lastRead + 1, last: to };
    }
    if (!stream) {
      this.remember({ endBytes, windowChunks: 1, prefetchedEnd: lastRead + 1, usedAt: ++this.clock });
      return { first: 1, last: 0 };
    }
    stream.usedAt = ++this.clock;
    stream.endBytes = Math.max(stream.endBytes, endBytes);
    stream.windowChunks = Math.min(this.windowChunksMax, stream.windowChunks * 2);
    const from = Math.max(lastRead + 1, stream.prefetchedEnd);
    const lead = from - (lastRead + 1);
    if (lead > stream.windowChunks - Math.min(this.strideChunks, stream.windowChunks)) return { first: 1, last: 0 };
    const to = Math.min(this.chunkCount - 1, lastRead + stream.windowChunks);
    stream.prefetchedEnd = Math.max(stream.prefetchedEnd, to + 1);
    return { first: from, last: to };
  }

  private match(offsetBytes: number): Stream | undefined {
    let best: Stream | undefined;
    for (const s of this.streams) {
      const distance = Math.abs(offsetBytes - s.endBytes);
      if (distance <= streamSlackBytes && (!best || distance < Math.abs(offsetBytes - best.endBytes))) best = s;
    }
    return best;
  }

  private remember(stream: Stream): void {
    if (this.streams.length >= streamsMax) {
      const oldest = this.streams.reduce((a, b) => (a.usedAt <= b.usedAt ? a : b));
      this.streams.splice(this.streams.indexOf(oldest), 1);
    }
    this.streams.push(stream);
  }
}
