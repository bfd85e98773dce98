// An SVG bar chart of wall seconds per workload, blockvault beside restic and
// borg, written to docs/benchmarks.svg by `npm run bench`. Hand-written SVG:
// no plotting dependency for one chart.

export interface ChartRow { workload: string; seconds: Record<string, number | undefined> }

const colors: Record<string, string> = { blockvault: '#2b6cb0', restic: '#c05621', borg: '#718096' };

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

export function barChart(title: string, rows: ChartRow[], tools: string[]): string {
  const barHeight = 14;
  const groupGap = 14;
  const left = 190;
  const width = 760;
  const plot = width - left - 70;
  const max = Math.max(...rows.flatMap((r) => tools.map((t) => r.seconds[t] ?? 0)));
  const groupHeight = tools.length * barHeight + groupGap;
  const height = 50 + rows.length * groupHeight + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`,
  ];
  tools.forEach((t, i) => {
    out.push(`<rect x="${left + i * 110}" y="30" width="12" height="12" fill="${colors[t] ?? '#999'}"/><text x="${left + i * 110 + 16}" y="40">${t}</text>`);
  });
  rows.forEach((r, g) => {
    const y0 = 55 + g * groupHeight;
    out.push(`<text x="${left - 8}" y="${y0 + (tools.length * barHeight) / 2 + 4}" text-anchor="end">${escape(r.workload)}</text>`);
    tools.forEach((t, i) => {
      const s = r.seconds[t];
      if (s === undefined) return;
      const w = Math.max(1, (s / max) * plot);
      const y = y0 + i * barHeight;
      out.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight - 2}" fill="${colors[t] ?? '#999'}"/>`);
      out.push(`<text x="${left + w + 4}" y="${y + barHeight - 4}" font-size="11">${s.toFixed(2)} s</text>`);
    });
  });
  out.push(`<text x="10" y="${height - 8}" font-size="11" fill="#555">wall seconds, shorter is better; 4 GiB disk, 1.8 GB of data; mount reads cold, stream = dd iflag=nocache</text>`, '</svg>');
  return out.join('\n');
}
