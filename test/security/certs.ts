// Test PKI made with the openssl CLI at test time, in a temp dir (no key is ever committed):
// a CA, a server certificate for localhost, client certificates by name, and a second,
// unrelated CA with a client of its own.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: string;
  server: CertFiles;
  clients: Record<string, CertFiles>;
  /** A client signed by an unrelated CA, with a name the policy grants: only the CA differs. */
  foreign: CertFiles;
  foreignCa: string;
  /** Issues another certificate from the trusted CA (e.g. a rotated server certificate). */
  issue(name: string, cn: string, extensions: string[]): CertFiles;
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]); // deno-fmt-ignore
  return { cert, key };
}

function makeLeaf(
  dir: string,
  ca: { cert: string; key: string },
  name: string,
  cn: string,
  extensions: string[],
): CertFiles {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions.join("\n") + "\n");
  openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    csr,
    "-subj",
    `/CN=${cn}`,
  ]); // deno-fmt-ignore
  openssl([
    "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
    "-out", cert, "-days", "2", "-extfile", ext,
  ]); // deno-fmt-ignore
  return { cert, key };
}

const CLIENT_EXT = ["extendedKeyUsage=clientAuth", "keyUsage=critical,digitalSignature"];
export const SERVER_EXT = [
  "subjectAltName=DNS:localhost,IP:127.0.0.1",
  "extendedKeyUsage=serverAuth",
  "keyUsage=critical,digitalSignature",
];

/** Builds the PKI under `dir`; `clients` maps file names to CNs. */
export function makePki(
  dir: string,
  clients: Record<string, string>,
  foreignCn = Object.values(clients)[0] ?? "foreign",
): TestPki {
  const ca = makeCa(dir, "ca");
  const other = makeCa(dir, "other-ca");
  const out: Record<string, CertFiles> = {};
  for (const [name, cn] of Object.entries(clients)) {
    out[name] = makeLeaf(dir, ca, name, cn, [
      `subjectAltName=URI:spiffe://test/${name}`,
      ...CLIENT_EXT,
    ]);
  }
  return {
    dir,
    ca: ca.cert,
    server: makeLeaf(dir, ca, "server", "ioeventd-server", SERVER_EXT),
    clients: out,
    foreign: makeLeaf(dir, other, "foreign", foreignCn, CLIENT_EXT),
    foreignCa: other.cert,
    issue: (name, cn, extensions) => makeLeaf(dir, ca, name, cn, extensions),
  };
}

/** A serial number in one spelling: hex, upper case, no leading zeros. */
export function normalSerial(hex: string): string {
  return BigInt(`0x${hex}`).toString(16).toUpperCase();
}

/** The serial number of a PEM certificate (tells two apart). */
export function serialOf(certFile: string): string {
  const out = execFileSync("openssl", ["x509", "-noout", "-serial", "-in", certFile]);
  return normalSerial(new TextDecoder().decode(out).trim().replace(/^serial=/, ""));
}

export function pem(file: string): string {
  return readFileSync(file, "utf8");
}
