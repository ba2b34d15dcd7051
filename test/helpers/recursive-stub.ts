import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';

/**
 * A recursive resolver as a CA's validation authority has one, reduced to what a test on loopback
 * needs: it answers from the test's DNS server (the customers' zones), sends questions for names
 * in a delegated zone to that zone's server (Portico's `dns` role), and follows a CNAME out of the
 * customer's zone into the delegated one, as a recursive resolver follows `_acme-challenge.{name}`
 * to the platform's challenge zone. UDP only, as Pebble asks; no cache, so every question reaches
 * the authoritative servers (what a test of "written, then answered" needs).
 */
export interface RecursiveStub {
  /** `127.0.0.1:port`, for Pebble's `-dnsserver`. */
  readonly address: string;
  /** Sends questions for `zone` and names below it to `server` (`host:port`). */
  delegate(zone: string, server: string): void;
  /** The questions that went to the delegated zones' servers, `name type`. */
  readonly delegatedQuestions: string[];
  close(): Promise<void>;
}

export async function startRecursiveStub(upstream: string): Promise<RecursiveStub> {
  const zones = new Map<string, string>();
  const delegatedQuestions: string[] = [];
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));

  const zoneServerOf = (name: string) => {
    const lower = name.toLowerCase();
    for (const [zone, server] of zones) if (lower === zone || lower.endsWith(`.${zone}`)) return server;
    return undefined;
  };

  socket.on('message', (message, remote) => {
    void answer(message).then(
      (reply) => socket.send(reply, remote.port, remote.address),
      () => undefined,
    );
  });

  async function answer(message: Buffer): Promise<Buffer> {
    const query = dnsPacket.decode(message);
    const [question] = query.questions ?? [];
    if (!question) throw new Error('no question');
    const delegated = zoneServerOf(question.name);
    if (delegated) {
      delegatedQuestions.push(`${question.name.toLowerCase()} ${question.type}`);
      return withRecursion(await ask(delegated, question.name, question.type), query.id);
    }
    const response = await ask(upstream, question.name, question.type);
    // A chain that leaves for a delegated zone without reaching an answer there: follow it.
    const answers = response.answers ?? [];
    const last = answers.at(-1);
    if (last?.type === 'CNAME' && question.type !== 'CNAME') {
      const target = String(last.data);
      const server = zoneServerOf(target);
      if (server) {
        delegatedQuestions.push(`${target.toLowerCase()} ${question.type}`);
        const there = await ask(server, target, question.type);
        response.answers = [...answers, ...(there.answers ?? [])];
        // The response code is the end of the chain's (its low four flag bits).
        response.flags = ((response.flags ?? 0) & ~0xf) | ((there.flags ?? 0) & 0xf);
      }
    }
    return withRecursion(response, query.id);
  }

  return {
    address: `127.0.0.1:${socket.address().port}`,
    delegate: (zone, server) => zones.set(zone.toLowerCase(), server),
    delegatedQuestions,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** The response as a recursive resolver sends it: recursion available, the asker's id. */
function withRecursion(response: dnsPacket.Packet, id: number | undefined): Buffer {
  return dnsPacket.encode({
    ...response,
    id,
    type: 'response',
    flags: (response.flags ?? 0) | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
  });
}

/** One question to one server over UDP, with a short retry (loopback drops nothing, but a busy server may be slow). */
async function ask(server: string, name: string, type: string): Promise<dnsPacket.Packet> {
  const [host, port] = splitServer(server);
  const query = dnsPacket.encode({
    type: 'query',
    id: Math.floor(Math.random() * 65_535),
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: type as dnsPacket.RecordType, name }],
  });
  for (let attempt = 0; ; attempt++) {
    const socket: Socket = createSocket('udp4');
    try {
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer from ${server}`)), 2000);
        socket.once('message', (reply) => {
          clearTimeout(timer);
          resolve(dnsPacket.decode(reply));
        });
        socket.send(query, port, host);
      });
    } catch (error) {
      if (attempt >= 2) throw error;
    } finally {
      socket.close();
    }
  }
}

function splitServer(server: string): [string, number] {
  const colon = server.lastIndexOf(':');
  return [server.slice(0, colon), Number(server.slice(colon + 1))];
}
