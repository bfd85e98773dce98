// Human-readable sizes, rates and durations for reports.

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function humanBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function humanRate(bytes: number, seconds: number): string {
  if (seconds <= 0) return '-';
  return `${humanBytes(bytes / seconds)}/s`;
}

export function humanSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}x` : '-';
}

/** "1 file", "2 files": a count with its noun in the right number. */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/** A size as a user would type it when it is a whole number of units ("64 KiB", "4 MiB"), else in bytes. */
export function exactBytes(bytes: number): string {
  for (let unit = units.length - 1; unit > 0; unit--) {
    const scale = 1024 ** unit;
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale} ${units[unit]}`;
  }
  return plural(bytes, 'byte');
}
