// The one reader of numbers for everything ioeventctl takes from a person or a file: flags
// of every command, reconcile files, fleet options and host lists. Decimal or 0x-hex, and
// nothing else: no sign, no exponent, no fraction, no blanks, no other base. Callers send
// what it returns as numbers or decimal strings, never the text they were given, because
// protobufjs reads a uint64 string such as "0x88704" as 0 without a word.
import { UsageError } from "./errors.ts";

const INTEGER = /^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/;

export const NUMBER_FORMS = "a decimal or 0x-hex integer";

/** A non-negative integer in decimal or 0x-hex text, or a JSON number that is one; else null. */
export function readNumber(value: unknown): bigint | null {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : null;
  }
  return typeof value === "string" && INTEGER.test(value) ? BigInt(value) : null;
}

/** What is wrong with a value readNumber refused, named as the user wrote it. */
export function numberProblem(where: string, value: unknown): string {
  return `${where}: must be ${NUMBER_FORMS}, got ${JSON.stringify(value)}`;
}

/** readNumber, or a usage error (exit 2) naming `where` (a flag, a field of a file). */
export function parseNumber(where: string, value: unknown): bigint {
  const n = readNumber(value);
  if (n === null) throw new UsageError(numberProblem(where, value));
  return n;
}

/** parseNumber within min..max, as a JS number (for counts, ports, sizes). */
export function parseSmallNumber(where: string, value: unknown, min: number, max: number): number {
  const n = parseNumber(where, value);
  if (n < BigInt(min) || n > BigInt(max)) {
    throw new UsageError(`${where}: must be ${min}..${max}, got ${value}`);
  }
  return Number(n);
}
