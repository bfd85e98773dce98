import { describe, expect, it } from 'vitest';
import { decodeBlockStatus, decodeErrorChunk, encodeGo, encodeMetaContexts, encodeOption, encodeRequest, optsMagic, requestMagic } from '../../../engine/nbd/protocol.js';
import { parseNbdUri } from '../../../engine/nbd/uri.js';

describe('NBD wire format', () => {
  it('encodes options, GO and meta-context queries in network byte order', () => {
    const go = encodeGo('disk0', [0, 3]);
    expect(go.toString('hex')).toBe('00000005' + Buffer.from('disk0').toString('hex') + '0002' + '0000' + '0003');
    const option = encodeOption(7, go);
    expect(option.readBigUInt64BE(0)).toBe(optsMagic);
    expect(option.readUInt32BE(8)).toBe(7);
    expect(option.readUInt32BE(12)).toBe(go.length);
    const meta = encodeMetaContexts('', ['base:allocation', 'qemu:dirty-bitmap:b']);
    expect(meta.readUInt32BE(0)).toBe(0);
    expect(meta.readUInt32BE(4)).toBe(2);
    expect(meta.readUInt32BE(8)).toBe(15);
  });

  it('encodes requests', () => {
    const r = encodeRequest(8, 7, 42n, 2 ** 40, 65536);
    expect(r.length).toBe(28);
    expect(r.readUInt32BE(0)).toBe(requestMagic);
    expect([r.readUInt16BE(4), r.readUInt16BE(6), r.readBigUInt64BE(8), r.readBigUInt64BE(16), r.readUInt32BE(24)]).toEqual([8, 7, 42n, 2n ** 40n, 65536]);
  });

  it('decodes block status and error chunks, refusing malformed ones', () => {
    const p = Buffer.alloc(4 + 16);
    p.writeUInt32BE(9, 0);
    p.writeUInt32BE(4096, 4);
    p.writeUInt32BE(3, 8);
    p.writeUInt32BE(8192, 12);
    p.writeUInt32BE(0, 16);
    expect(decodeBlockStatus(p)).toEqual({ contextId: 9, extents: [{ length: 4096, flags: 3 }, { length: 8192, flags: 0 }] });
    expect(() => decodeBlockStatus(p.subarray(0, 10))).toThrow(/malformed/);
    const e = Buffer.concat([Buffer.from([0, 0, 0, 5, 0, 4]), Buffer.from('oops')]);
    expect(decodeErrorChunk(e)).toEqual({ errno: 5, message: 'oops' });
  });

  it('parses NBD URIs', () => {
    expect(parseNbdUri('nbd+unix:///?socket=/run/web01.sock')).toEqual({ transport: 'unix', socket: '/run/web01.sock', exportName: '' });
    expect(parseNbdUri('nbd://host.example:10810/disk0')).toEqual({ transport: 'tcp', host: 'host.example', port: 10810, exportName: 'disk0' });
    expect(parseNbdUri('nbd://10.0.0.1/x').port).toBe(10809);
    expect(() => parseNbdUri('nbd+unix:///x')).toThrow(/socket=/);
    expect(() => parseNbdUri('nbds://h/x')).toThrow(/unsupported NBD transport/);
  });
});
