/**
 * A raw HTTP/2 client over TLS: frames written by hand, for requests that real clients refuse to
 * send (connection-specific headers, CR/LF in a value, a Host beside a different `:authority`, a
 * body that disagrees with its content-length) and for floods (Rapid Reset). Header blocks are
 * HPACK literals without indexing and without Huffman coding (RFC 7541 §6.2.2), which every decoder
 * must accept. Frames received are parsed by type only: the server's HPACK is not decoded, except
 * for a `:status` sent from the static table (200, 204, 206, 304, 400, 404, 500).
 */
import { once } from 'node:events';
import tls from 'node:tls';

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
};
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 };
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** `:status` values of the HPACK static table, by index (RFC 7541 Appendix A). */
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), the prefix's high bits `first`. */
function hpackInteger(value: number, n: number, first: number): number[] {
  const max = (1 << n) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

/** A header block of literals without indexing, new names, no Huffman: bytes as given. */
export function headerBlock(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    parts.push(Buffer.from([0x00, ...hpackInteger(n.length, 7, 0)]), n);
    parts.push(Buffer.from(hpackInteger(v.length, 7, 0)), v);
  }
  return Buffer.concat(parts);
}

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

export class RawH2 {
  readonly frames: Frame[] = [];
  closed = false;
  private buffer = Buffer.alloc(0);
  private readonly waiters: (() => void)[] = [];

  private constructor(readonly socket: tls.TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      while (this.buffer.length >= 9) {
        const length = this.buffer.readUIntBE(0, 3);
        if (this.buffer.length < 9 + length) break;
        const received: Frame = {
          type: this.buffer[3] as number,
          flags: this.buffer[4] as number,
          streamId: this.buffer.readUInt32BE(5) & 0x7fffffff,
          payload: this.buffer.subarray(9, 9 + length),
        };
        this.buffer = this.buffer.subarray(9 + length);
        // Acknowledge the server's SETTINGS, as a client must.
        if (received.type === FRAME.SETTINGS && (received.flags & FLAG.ACK) === 0) {
          socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        }
        this.frames.push(received);
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connects with ALPN `h2` only and sends the connection preface and empty SETTINGS. */
  static async connect(options: { port: number; servername: string; ca: string }): Promise<RawH2> {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: options.port,
      servername: options.servername,
      ca: options.ca,
      ALPNProtocols: ['h2'],
    });
    await once(socket, 'secureConnect');
    if (socket.alpnProtocol !== 'h2') throw new Error(`ALPN agreed ${socket.alpnProtocol}, not h2`);
    socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
    return new RawH2(socket);
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** HEADERS with END_HEADERS, and END_STREAM unless a body follows. */
  headers(streamId: number, fields: [string, string][], endStream = true): Buffer {
    return frame(
      FRAME.HEADERS,
      FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0),
      streamId,
      headerBlock(fields),
    );
  }

  /** Resolves once `condition` holds of the frames received, or the connection closed. */
  async until(condition: (frames: Frame[]) => boolean): Promise<void> {
    while (!condition(this.frames) && !this.closed) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** How stream `streamId` ended: its `:status` (if from the static table), or its RST_STREAM code. */
  async outcome(streamId: number): Promise<{ status?: number; reset?: number; goaway?: number }> {
    const ended = (f: Frame) =>
      f.type === FRAME.GOAWAY ||
      (f.streamId === streamId &&
        (f.type === FRAME.RST_STREAM ||
          ((f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0)));
    await this.until((frames) => frames.some(ended));
    const mine = this.frames.filter((f) => f.streamId === streamId);
    const headers = mine.find((f) => f.type === FRAME.HEADERS);
    const reset = mine.find((f) => f.type === FRAME.RST_STREAM);
    const goaway = this.frames.find((f) => f.type === FRAME.GOAWAY);
    const first = headers?.payload[0];
    return {
      status: first !== undefined && first & 0x80 ? STATIC_STATUS[first & 0x7f] : undefined,
      reset: reset?.payload.readUInt32BE(0),
      goaway: goaway?.payload.readUInt32BE(4),
    };
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
