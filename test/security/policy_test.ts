// The policy file and the authorization decision, without a server: every rule of
// service/security/authorize.ts on its own.
import assert from "node:assert/strict";
import type { PeerCertificate } from "node:tls";
import {
  authorize,
  type Ownership,
  type RegistrationLookup,
  RULES,
} from "../../service/security/authorize.ts";
import { summarize } from "../../service/security/audit.ts";
import {
  certificateNames,
  type Identity,
  identityOf,
  parseSubjectAltName,
} from "../../service/security/identity.ts";
import { Policy } from "../../service/security/policy.ts";

const S = "/ioeventd.v1.IoeventfdService/";

const tlsId = (...names: string[]): Identity => ({ transport: "tls", names, name: names[0] });
const local: Identity = { transport: "local", names: ["local"], name: "local" };

const policy = Policy.parse(JSON.stringify({
  identities: [
    { identity: "CN=ops", role: "operator" },
    { identity: "DNS:ro.example", role: "viewer" },
    { identity: "URI:spiffe://x/tenant", role: "operator", owners: ["vm-a", "t-*"] },
    { identity: "CN=gpu", role: "operator", devices: ["65:00.0"] },
    { identity: "CN=boss", role: "admin" },
  ],
}));

const registrations: Ownership[] = [
  { id: "ioe-a", owner: "vm-a", device: "0000:65:00.0" },
  { id: "ioe-b", owner: "vm-b", device: "0000:65:00.0" },
  { id: "ioe-n", owner: "vm-a", device: "0000:66:00.0" },
];
const lookup: RegistrationLookup = {
  byId: (id) => registrations.find((r) => r.id === id),
  byKey: (key) => registrations.find((r) => r.id === (key as { id?: string }).id),
  ofOwner: (owner) => registrations.filter((r) => r.owner === owner),
};

function decide(id: Identity, method: string, request: unknown = {}) {
  return authorize(id, policy.grantFor(id), S + method, request, lookup);
}

Deno.test("identity: names come from the certificate subject CN and every SAN", () => {
  assert.deepEqual(
    parseSubjectAltName('DNS:a.example, URI:spiffe://x/y, IP Address:10.0.0.1, DNS:"b,c"'),
    ["DNS:a.example", "URI:spiffe://x/y", "IP:10.0.0.1", "DNS:b,c"],
  );
  const cert = {
    subject: { CN: "ops" },
    subjectaltname: "DNS:ops.example",
  } as unknown as PeerCertificate;
  assert.deepEqual(certificateNames(cert), ["CN=ops", "DNS:ops.example"]);
  assert.deepEqual(identityOf({ transportSecurityType: "ssl", sslPeerCertificate: cert }), {
    transport: "tls",
    names: ["CN=ops", "DNS:ops.example"],
    name: "CN=ops",
  });
  assert.equal(identityOf({ transportSecurityType: "local" })?.name, "local");
  assert.equal(identityOf({}), null, "an unverified TLS peer (or no tag) is nobody");
  assert.equal(identityOf({ transportSecurityType: "ssl" }), null);
});

Deno.test("policy: file errors are all reported; local defaults to admin", () => {
  assert.throws(
    () =>
      Policy.parse(
        JSON.stringify({
          identities: [
            { identity: "bob", role: "viewer" },
            { identity: "CN=x", role: "root", owner: ["a"] },
            { identity: "CN=y", role: "viewer", devices: ["nope"] },
            { identity: "CN=y", role: "viewer" },
          ],
        }),
        "p.json",
      ),
    (e: Error) =>
      /identities\[0\]\.identity must be/.test(e.message) &&
      /identities\[1\]: unknown key owner/.test(e.message) &&
      /identities\[1\]\.role must be one of viewer,operator,admin/.test(e.message) &&
      /identities\[2\]\.devices: nope is not a PCI address/.test(e.message) &&
      /identities\[3\]: CN=y is listed twice/.test(e.message),
  );
  assert.throws(() => Policy.parse("[]"), /expected \{"identities"/);
  assert.equal(policy.grantFor(local)?.role, "admin");
  const lockedDown = Policy.parse(JSON.stringify({
    identities: [{ identity: "local", role: "viewer" }],
  }));
  assert.equal(lockedDown.grantFor(local)?.role, "viewer");
  assert.equal(Policy.builtIn().grantFor({ ...local, names: ["insecure"] })?.role, "admin");
  assert.equal(policy.grantFor({ ...local, names: ["insecure"] }), null);
  // The first entry naming any of the caller's names wins (file order).
  assert.equal(policy.grantFor(tlsId("CN=unknown", "DNS:ro.example"))?.role, "viewer");
  assert.equal(policy.grantFor(tlsId("CN=boss", "DNS:ro.example"))?.role, "viewer");
});

Deno.test("authorize: roles nest viewer < operator < admin; unknown methods need admin", () => {
  const viewer = tlsId("DNS:ro.example");
  const ops = tlsId("CN=ops");
  const boss = tlsId("CN=boss");
  for (const m of ["GetAgentInfo", "ListDevices", "ListIoeventfds", "WatchIoeventfds"]) {
    assert.equal(decide(viewer, m).allowed, true, m);
  }
  for (const m of ["CreateIoeventfd", "DeleteIoeventfd", "ReconcileOwner"]) {
    const d = decide(viewer, m);
    assert.equal(d.allowed, false, m);
    assert.equal(!d.allowed && d.kind, "ROLE");
    assert.equal(decide(ops, m).allowed, true, m);
  }
  assert.equal(decide(ops, "DrainHost").allowed, false);
  assert.equal(decide(boss, "DrainHost").allowed, true);
  const nobody = decide(tlsId("CN=stranger"), "GetAgentInfo");
  assert.equal(!nobody.allowed && nobody.kind, "NO_ROLE");
  // Health checks need only a verified transport.
  assert.equal(
    authorize(tlsId("CN=stranger"), null, "/grpc.health.v1.Health/Check", {}, lookup).allowed,
    true,
  );
  assert.ok(Object.keys(RULES).every((p) => p.startsWith("/")));
});

Deno.test("authorize: owner and device restrictions cover every way to reach an ioeventfd", () => {
  const tenant = tlsId("URI:spiffe://x/tenant");
  const allowed = (m: string, r: unknown) => decide(tenant, m, r).allowed;
  assert.equal(
    allowed("CreateIoeventfd", { owner: "vm-a", spec: { device: "0000:65:00.0" } }),
    true,
  );
  assert.equal(allowed("CreateIoeventfd", { owner: "t-42", spec: {} }), true);
  assert.equal(allowed("CreateIoeventfd", { owner: "vm-b", spec: {} }), false);
  assert.equal(allowed("CreateIoeventfd", { owner: "t", spec: {} }), false, "t-* needs the dash");
  assert.equal(allowed("DeleteIoeventfd", { selector: "id", id: "ioe-b" }), false);
  assert.equal(allowed("DeleteIoeventfd", { selector: "key", key: { id: "ioe-b" } }), false);
  assert.equal(allowed("GetIoeventfd", { id: "ioe-b" }), false);
  assert.equal(allowed("GetIoeventfd", { id: "ioe-gone" }), true, "NOT_FOUND is the handler's");
  assert.equal(allowed("ReconcileOwner", { owner: "vm-b", desired: [] }), false);
  assert.equal(allowed("ListIoeventfds", {}), false);
  assert.equal(allowed("ListIoeventfds", { owner: "vm-a" }), true);
  assert.equal(allowed("WatchIoeventfds", { device: "0000:65:00.0" }), false);

  // A key-based delete is pinned to the id that was checked: a registration swapped in
  // under the same key between the check and the delete is not touched.
  const pinned = decide(tenant, "DeleteIoeventfd", { selector: "key", key: { id: "ioe-a" } });
  assert.deepEqual(pinned.allowed && pinned.request, { selector: "id", id: "ioe-a" });

  const gpu = tlsId("CN=gpu");
  const gpuAllowed = (m: string, r: unknown) => decide(gpu, m, r).allowed;
  assert.equal(gpuAllowed("CreateIoeventfd", { owner: "x", spec: { device: "65:00.0" } }), true);
  assert.equal(gpuAllowed("CreateIoeventfd", { owner: "x", spec: { device: "66:00.0" } }), false);
  assert.equal(gpuAllowed("GetDevice", { address: "0000:66:00.0" }), false);
  // vm-a also has an ioeventfd on the NIC, which a reconcile of vm-a could remove.
  assert.equal(gpuAllowed("ReconcileOwner", { owner: "vm-a", desired: [] }), false);
  assert.equal(gpuAllowed("ReconcileOwner", { owner: "vm-b", desired: [] }), true);
  const long = decide(tenant, "CreateIoeventfd", { owner: "z".repeat(10_000), spec: {} });
  assert.ok(!long.allowed && long.message.length < 200, "denials quote bounded text");
});

Deno.test("audit: request summaries are bounded whatever the caller sends", () => {
  const s = summarize({
    owner: "o".repeat(1000),
    desired: Array.from({ length: 100 }, (_, i) => ({ offset: String(i) })),
    deep: { a: { b: { c: { d: { e: 1 } } } } },
    bytes: new Uint8Array(5000),
  }) as Record<string, unknown>;
  assert.ok(JSON.stringify(s).length < 4000);
  assert.match(String(s.owner), /…\(1000\)$/);
  assert.equal((s.desired as unknown[]).length, 33);
  assert.equal(s.bytes, "<5000 bytes>");
});
