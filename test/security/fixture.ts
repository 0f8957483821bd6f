// A real agent with a Unix socket and an mTLS TCP listener, a test PKI and a policy file,
// and clients that connect as each test identity.
import * as grpc from "@grpc/grpc-js";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tls from "node:tls";
import { decodeStatus } from "../../service/api/status_details.ts";
import { AgentClient } from "../../service/cli/client.ts";
import type { AgentConfig } from "../../service/config.ts";
import type { PolicyDocument } from "../../service/security/policy.ts";
import { clientCredentials } from "../../service/security/tls.ts";
import { GPU, removeDir, startAgent, tempDir, type TestAgent } from "../support/agent.ts";
import { makePki, normalSerial, serialOf, SERVER_EXT, type TestPki } from "./certs.ts";

/** File name → certificate CN. */
export const CLIENTS = {
  viewer: "viewer-1",
  operator: "operator-1",
  admin: "admin-1",
  restricted: "restricted-1",
  gpuonly: "gpu-only",
  stranger: "stranger",
} as const;

export type ClientName = keyof typeof CLIENTS;

/**
 * mTLS callers name no process unless their entry says which (the source binding): these
 * may name processes of the test's own user, where the tests' VMM stand-ins run.
 */
export const TEST_USER = { uids: [Deno.uid() ?? 0] };

export const POLICY: PolicyDocument = {
  identities: [
    { identity: "CN=viewer-1", role: "viewer", sources: TEST_USER },
    { identity: "CN=operator-1", role: "operator", sources: TEST_USER },
    { identity: "CN=admin-1", role: "admin", sources: TEST_USER },
    // Matched by SAN, and limited to one owner and a prefix of others.
    {
      identity: "URI:spiffe://test/restricted",
      role: "operator",
      owners: ["vm-a", "tenant-a-*"],
      sources: TEST_USER,
    },
    { identity: "CN=gpu-only", role: "operator", devices: [GPU], sources: TEST_USER },
  ],
};

export interface SecureAgent extends TestAgent {
  dir: string;
  pki: TestPki;
  /** "localhost:<port>" of the mTLS listener. */
  tlsAddress: string;
  policyPath: string;
  auditPath: string;
  /** A client over mTLS with the named certificate (closed by stop()). */
  as(name: ClientName): AgentClient;
  /** A client over TLS with any credentials (closed by stop()). */
  connect(credentials: grpc.ChannelCredentials): AgentClient;
  auditLines(): Record<string, unknown>[];
}

export async function startSecureAgent(
  overrides: Partial<AgentConfig> = {},
  policy: PolicyDocument = POLICY,
): Promise<SecureAgent> {
  const dir = tempDir("ioeventd-sec-");
  const pki = makePki(dir, CLIENTS, CLIENTS.admin);
  const policyPath = join(dir, "policy.json");
  writeFileSync(policyPath, JSON.stringify(policy));
  const auditPath = join(dir, "audit.jsonl");
  const t = await startAgent({
    listen: [`unix://${join(dir, "run", "ioeventd.sock")}`, "127.0.0.1:0"],
    tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
    policyFile: policyPath,
    auditLog: auditPath,
    ...overrides,
  }, dir);
  const tcp = t.agent.server.bound.find((a) => !a.startsWith("unix:"))!;
  const tlsAddress = tcp.replace(/^127\.0\.0\.1:/, "localhost:");
  const opened: AgentClient[] = [];
  const connect = (credentials: grpc.ChannelCredentials) => {
    const c = new AgentClient(tlsAddress, credentials);
    opened.push(c);
    return c;
  };
  return {
    ...t,
    dir,
    pki,
    tlsAddress,
    policyPath,
    auditPath,
    as: (name) => connect(clientCredentials({ ca: pki.ca, ...pki.clients[name] })),
    connect,
    auditLines: () =>
      readFileSync(auditPath, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)),
    async stop() {
      for (const c of opened) c.close();
      await t.stop();
      removeDir(dir);
    },
  };
}

export interface Refusal {
  code: number;
  details: string;
  reason: string;
  metadata: Record<string, string>;
}

/** The refusal a call ended with; fails the test if the call succeeded. */
export async function refusal(call: Promise<unknown>): Promise<Refusal> {
  try {
    await call;
  } catch (err) {
    const e = err as grpc.ServiceError;
    const d = decodeStatus(e);
    return {
      code: e.code,
      details: e.details,
      reason: d?.reason ?? "",
      metadata: d?.metadata ?? {},
    };
  }
  throw new Error("the call was accepted");
}

/** The serial of the certificate a new TLS connection to the agent is shown. */
export function servedSerial(t: Pick<SecureAgent, "tlsAddress" | "pki">): Promise<string> {
  const port = Number(t.tlsAddress.split(":")[1]);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "localhost",
      port,
      ca: readFileSync(t.pki.ca),
      cert: readFileSync(t.pki.clients.viewer.cert),
      key: readFileSync(t.pki.clients.viewer.key),
      ALPNProtocols: ["h2"],
    }, () => {
      const serial = normalSerial(socket.getPeerCertificate().serialNumber);
      socket.end();
      resolve(serial);
    });
    socket.on("error", reject);
  });
}

/** Replaces the server certificate and key files in place, as a rotation tool would. */
export function rotateServerCertificate(t: Pick<SecureAgent, "pki">, name: string): string {
  const next = t.pki.issue(name, `ioeventd-server-${name}`, SERVER_EXT);
  copyFileSync(next.key, t.pki.server.key);
  copyFileSync(next.cert, t.pki.server.cert);
  return serialOf(t.pki.server.cert);
}
