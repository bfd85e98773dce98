// NBD URIs (the NBD project's doc/uri.md): nbd://host[:port]/export and
// nbd+unix:///export?socket=/path. Pure.
import { BlockvaultError } from '../core/errors.js';

export type NbdAddress =
  | { transport: 'tcp'; host: string; port: number; exportName: string }
  | { transport: 'unix'; socket: string; exportName: string };

export function isNbdUri(s: string): boolean {
  return /^nbd(\+unix|\+tcp)?:\/\//.test(s);
}

export function parseNbdUri(s: string): NbdAddress {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new BlockvaultError('BAD_INPUT', `not an NBD URI: ${s} (expected nbd://host[:port]/export or nbd+unix:///export?socket=/path)`);
  }
  const exportName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (url.protocol === 'nbd+unix:') {
    const socket = url.searchParams.get('socket');
    if (!socket || url.host) throw new BlockvaultError('BAD_INPUT', `${s}: nbd+unix URIs need an empty host and ?socket=/path`);
    return { transport: 'unix', socket, exportName };
  }
  if (url.protocol === 'nbd:' || url.protocol === 'nbd+tcp:') {
    if (!url.hostname) throw new BlockvaultError('BAD_INPUT', `${s}: no host`);
    const port = url.port ? Number(url.port) : 10809;
    return { transport: 'tcp', host: url.hostname.replace(/^\[|\]$/g, ''), port, exportName };
  }
  throw new BlockvaultError('BAD_INPUT', `${s}: unsupported NBD transport ${url.protocol} (TLS transports are not supported)`);
}

export function describeAddress(a: NbdAddress): string {
  return a.transport === 'unix' ? `nbd+unix:///${a.exportName}?socket=${a.socket}` : `nbd://${a.host}:${a.port}/${a.exportName}`;
}
