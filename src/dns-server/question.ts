/**
 * The question of a query as bytes: where it sits in the message, and its name's labels. dns-packet
 * decodes names into dotted text, which cannot tell a dot inside a label from one between labels,
 * and turns bytes that are not UTF-8 into replacement characters; the responder decides with
 * these bytes what the name is, and echoes them unchanged, so a resolver that randomizes the case
 * of its questions (DNS 0x20) finds its own question in the answer, whatever it held.
 */

/** The header's length: the question starts right after it. */
export const HEADER_LENGTH = 12;

export interface QuestionBytes {
  /** The question as sent: its name, type and class. */
  bytes: Buffer;
  /** The name's labels as sent, without the final empty one. */
  labels: Buffer[];
}

/**
 * The first question of `message`, or undefined when its name does not end within the message or
 * uses a compression pointer (in the first name of a message there is nothing before it to point
 * to but the header: only a malformed or hostile query does that).
 */
export function questionBytes(message: Buffer): QuestionBytes | undefined {
  const labels: Buffer[] = [];
  let offset = HEADER_LENGTH;
  for (;;) {
    const length = message[offset];
    // 0x40 and up: a pointer or a reserved label type.
    if (length === undefined || length > 63) return undefined;
    if (length === 0) break;
    if (offset + 1 + length > message.length) return undefined;
    labels.push(message.subarray(offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  const end = offset + 1 + 4;
  if (end > message.length) return undefined;
  return { bytes: message.subarray(HEADER_LENGTH, end), labels };
}

/** `label` in lowercase as DNS compares names: ASCII letters only (RFC 4343), every other byte as it is. */
export function lowercaseLabel(label: Buffer): Buffer {
  const out = Buffer.from(label);
  for (let i = 0; i < out.length; i++) {
    const byte = out[i] as number;
    if (byte >= 0x41 && byte <= 0x5a) out[i] = byte + 0x20;
  }
  return out;
}

/**
 * The labels of `name` relative to `zone` (both lowercase labels), `[]` for the apex, or undefined
 * when the name is not in the zone.
 */
export function relativeTo(labels: readonly Buffer[], zone: readonly Buffer[]): Buffer[] | undefined {
  if (labels.length < zone.length) return undefined;
  const cut = labels.length - zone.length;
  for (let i = 0; i < zone.length; i++) {
    if (!(labels[cut + i] as Buffer).equals(zone[i] as Buffer)) return undefined;
  }
  return labels.slice(0, cut);
}

/**
 * `encoded` (a message dns-packet encoded with no question) with `question` put back in place,
 * byte for byte, and the header's question count set to one. dns-packet writes no compression
 * pointers, so nothing in the rest of the message points into the question.
 */
export function withQuestion(encoded: Buffer, question: Buffer): Buffer {
  const out = Buffer.concat([encoded.subarray(0, HEADER_LENGTH), question, encoded.subarray(HEADER_LENGTH)]);
  out.writeUInt16BE(1, 4);
  return out;
}
