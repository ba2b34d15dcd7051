import { isIP } from 'node:net';

/**
 * Which addresses a tenant may make Portico connect to (an App's origin, a webhook), unless the
 * operator allows private ones (`PORTICO_ALLOW_PRIVATE_ORIGINS=1`). The rule (docs/security.md):
 *
 * IPv4: public unless in one of `IPV4_REFUSED` (this network, private, shared/CGNAT, loopback,
 * link-local, IETF protocol assignments, benchmarking, multicast, reserved and broadcast).
 *
 * IPv6: public only in global unicast, 2000::/3, which leaves out unspecified, loopback,
 * IPv4-compatible, discard-only, the local-use NAT64 prefix, unique-local fc00::/7, link-local
 * fe80::/10, site-local fec0::/10 and multicast ff00::/8; and in it, not in 2001::/23 (IETF
 * protocol assignments: Teredo, benchmarking, ORCHID). Forms that carry an IPv4 address which the
 * packets end up at are judged by that address: IPv4-mapped ::ffff:0:0/96 (whether written
 * dotted or in hex), the NAT64 well-known prefix 64:ff9b::/96 (what DNS64 answers for an
 * IPv4-only name on an IPv6-only network), and 6to4 2002::/16.
 *
 * Documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20)
 * are allowed: nothing routes them on the internet, so they reach nothing of the platform's, and
 * refusing them would protect nothing (the end-to-end test of the defaults runs its origin there).
 *
 * Each family is matched against its own table, byte by byte. Node's `BlockList` is not used: its
 * `check()` of an IPv4 address also matches IPv6 rules as IPv4-mapped, so an IPv6 rule for
 * ::ffff:0:0/96 made every IPv4 address private.
 */

interface Range {
  readonly bytes: readonly number[];
  readonly bits: number;
}

const IPV4_REFUSED: readonly Range[] = [
  '0.0.0.0/8', // "this network" (0.0.0.0 reaches the local host on Linux)
  '10.0.0.0/8', // private
  '100.64.0.0/10', // shared address space (carrier-grade NAT)
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local (cloud metadata services: 169.254.169.254)
  '172.16.0.0/12', // private
  '192.0.0.0/24', // IETF protocol assignments
  '192.168.0.0/16', // private
  '198.18.0.0/15', // benchmarking
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, and the limited broadcast 255.255.255.255
].map(range);

const IPV6_GLOBAL_UNICAST = range('2000::/3');
const IPV6_REFUSED_IN_GLOBAL: readonly Range[] = [
  '2001::/23', // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
].map(range);

/** IPv6 prefixes whose last 32 bits are the IPv4 address the traffic goes to. */
const IPV4_IN_LAST_32_BITS: readonly Range[] = [
  '::ffff:0:0/96', // IPv4-mapped
  '64:ff9b::/96', // NAT64 well-known prefix (RFC 6052)
].map(range);
/** 6to4 (RFC 3056): the IPv4 address of the tunnel's end follows the prefix, in bits 16-47. */
const SIX_TO_FOUR = range('2002::/16');

/** True when `address` (an IP literal) is one a tenant may not make Portico connect to. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return isPrivateIpv4(ipv4Bytes(address));
  if (family === 6) return isPrivateIpv6(ipv6Bytes(address));
  return false; // not an address: names are judged by what they resolve to, when connecting
}

function isPrivateIpv4(bytes: readonly number[]): boolean {
  return IPV4_REFUSED.some((refused) => inRange(bytes, refused));
}

function isPrivateIpv6(bytes: readonly number[]): boolean {
  if (IPV4_IN_LAST_32_BITS.some((prefix) => inRange(bytes, prefix))) return isPrivateIpv4(bytes.slice(12));
  if (inRange(bytes, SIX_TO_FOUR)) return isPrivateIpv4(bytes.slice(2, 6));
  if (!inRange(bytes, IPV6_GLOBAL_UNICAST)) return true;
  return IPV6_REFUSED_IN_GLOBAL.some((refused) => inRange(bytes, refused));
}

function inRange(bytes: readonly number[], { bytes: network, bits }: Range): boolean {
  if (bytes.length !== network.length) return false;
  for (let i = 0; i * 8 < bits; i++) {
    const mask = bits - i * 8 >= 8 ? 0xff : (0xff << (8 - (bits - i * 8))) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((network[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** `'10.0.0.0/8'` as a range; the tables above are constants, so a typo throws at load. */
function range(cidr: string): Range {
  const [address = '', bits = ''] = cidr.split('/');
  const family = isIP(address);
  if (family === 0 || !/^\d+$/.test(bits)) throw new Error(`not a CIDR range: ${cidr}`);
  return { bytes: family === 4 ? ipv4Bytes(address) : ipv6Bytes(address), bits: Number(bits) };
}

/** The 4 bytes of an address `isIP` calls IPv4 (dotted decimal). */
function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

/**
 * The 16 bytes of an address `isIP` calls IPv6: `::` expanded, a trailing dotted IPv4 part
 * (`::ffff:127.0.0.1`) taken as the last 32 bits, a zone (`fe80::1%eth0`) ignored.
 */
function ipv6Bytes(address: string): number[] {
  let text = address.split('%')[0] ?? '';
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = ipv4Bytes(dotted[1]);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (part: string) =>
    part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16));
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const hextets = [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after];
  return hextets.flatMap((hextet) => [hextet >> 8, hextet & 0xff]);
}
