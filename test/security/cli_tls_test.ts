// ioeventctl against an mTLS listener: its TLS flags (and $IOEVENTD_TLS_*), a host name or an
// IP with --tls-server-name, and a refusal printed with its reason and exit code 4.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startSecureAgent } from "./fixture.ts";

const CLI = fileURLToPath(new URL("../../service/cli/ioeventctl.ts", import.meta.url));
const opts = { sanitizeOps: false, sanitizeResources: false };

async function ctl(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: r.code, out: text.decode(r.stdout), err: text.decode(r.stderr) };
}

Deno.test("ioeventctl: mutual TLS flags, IP addresses, refusals", opts, async () => {
  const t = await startSecureAgent();
  try {
    const viewer = t.pki.clients.viewer;
    const tls = ["--tls-ca", t.pki.ca, "--tls-cert", viewer.cert, "--tls-key", viewer.key];
    const byName = await ctl(["--address", t.tlsAddress, ...tls, "devices"]);
    assert.equal(byName.code, 0, byName.err + byName.out);
    assert.match(byName.out, /0000:65:00\.0/);

    const ip = t.tlsAddress.replace("localhost", "127.0.0.1");
    const byIp = await ctl(["--address", ip, ...tls, "--tls-server-name", "localhost", "info"]);
    assert.equal(byIp.code, 0, byIp.err + byIp.out);

    const fromEnv = await ctl(["--address", t.tlsAddress, "--json", "delete", "ioe-0"], {
      IOEVENTD_TLS_CA: t.pki.ca,
      IOEVENTD_TLS_CERT: viewer.cert,
      IOEVENTD_TLS_KEY: viewer.key,
    });
    assert.equal(fromEnv.code, 4, fromEnv.err + fromEnv.out);
    assert.equal(JSON.parse(fromEnv.out).error, "PERMISSION_DENIED");

    const noCert = await ctl(["--address", t.tlsAddress, "--tls-ca", t.pki.ca, "info"]);
    assert.equal(noCert.code, 3, "no client certificate: the agent is unreachable");
  } finally {
    await t.stop();
  }
});
