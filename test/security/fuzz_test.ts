// Property-based fuzzing (fast-check): 100 000 generated requests at the validation, and a
// few thousand more at the running server through the real client and as raw protobuf
// bytes. None may crash the agent, none may arm a write outside a BAR (or misaligned, or
// over MSI-X), and none that is rejected may change anything.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import type { PciDevice } from "../../service/devices/types.ts";
import { Inventory } from "../../service/devices/inventory.ts";
import { DevicePolicy } from "../../service/devices/policy.ts";
import { createSimulatedHost } from "../../service/devices/simulate.ts";
import { REASONS } from "../../service/rejection/rejection.ts";
import {
  type RawSpec,
  type Spec,
  validateOwner,
  validateRequestId,
  validateSpec,
  WIDTHS,
} from "../../service/registry/validation.ts";
import { decodeStatus } from "../../service/api/status_details.ts";
import { simulatedSysfsRoot } from "../../service/config.ts";
import { removeDir, startAgent, tempDir, type TestAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";
import { type ByteRange, nonZeroRanges, strayBytes } from "./bar_scan.ts";
import { junk, rawCall, rawSpec } from "./fuzz_arbitraries.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const VALIDATION_RUNS = 100_000;
const SERVER_RUNS = 3_000;

/** Why a validated spec would be an unsafe write, judged independently of validation.ts. */
function unsafe(spec: Spec, dev: PciDevice | undefined): string | null {
  if (!dev?.managed) return "device unknown or unmanaged";
  const bar = dev.bars[spec.bar];
  if (!bar || !bar.eligible || bar.kind !== "memory" || !bar.resourcePath) {
    return "BAR not eligible";
  }
  if (!(WIDTHS as readonly number[]).includes(spec.width)) return `width ${spec.width}`;
  const w = BigInt(spec.width);
  if (typeof spec.offset !== "bigint" || spec.offset < 0n) return "offset not a u64";
  if (spec.offset % w !== 0n) return "misaligned";
  if (spec.offset + w > BigInt(bar.length)) return "outside the BAR";
  if (spec.data < 0n || spec.data >= 1n << (8n * w)) return "data does not fit";
  for (const r of dev.msix ? [dev.msix.table, dev.msix.pba] : []) {
    const start = BigInt(r.offset);
    if (r.bar === spec.bar && spec.offset < start + BigInt(r.length) && spec.offset + w > start) {
      return "overlaps MSI-X";
    }
  }
  const { pid, fd } = spec.source;
  if (!Number.isInteger(pid) || pid < 1 || !Number.isInteger(fd) || fd < 0) return "bad source";
  return null;
}

Deno.test(
  `fuzz: ${VALIDATION_RUNS} generated requests at the validation: no throw, no unsafe acceptance`,
  opts,
  async () => {
    const dir = tempDir("ioeventd-fuzz-");
    try {
      const root = join(dir, "sys", "bus", "pci", "devices");
      await createSimulatedHost(root);
      const inventory = new Inventory({
        roots: [{ path: root, simulated: true }],
        policy: new DevicePolicy({ allow: [], deny: ["0000:66:00.0"] }), // one unmanaged
      });
      await inventory.scan();
      const ctx = { device: (a: string) => inventory.get(a), widths: WIDTHS };
      const counts = { accepted: 0, rejected: 0 };
      const started = performance.now();
      fc.assert(
        fc.property(
          fc.oneof(
            { weight: 19, arbitrary: rawSpec(inventory.list(), { pids: [1, 4242], fds: [0, 7] }) },
            { weight: 1, arbitrary: junk },
          ),
          junk,
          (raw, other) => {
            const v = validateSpec(raw as RawSpec, ctx);
            if (v.ok) {
              counts.accepted++;
              const why = unsafe(v.value, inventory.get(v.value.device));
              if (why) throw new Error(`accepted an unsafe write (${why}): ${String(raw)}`);
            } else {
              counts.rejected++;
              assert.ok(v.violations.length > 0);
              for (const x of v.violations) {
                assert.ok(Object.hasOwn(REASONS, x.reason), x.reason);
                assert.equal(typeof x.field, "string");
                assert.equal(typeof x.description, "string");
              }
            }
            // The other validators take anything too.
            validateOwner(other, "owner");
            validateRequestId(other, "request_id");
          },
        ),
        { numRuns: VALIDATION_RUNS },
      );
      console.log(
        `validation: ${VALIDATION_RUNS} runs in ${Math.round(performance.now() - started)} ms, ` +
          `${counts.accepted} accepted, ${counts.rejected} rejected`,
      );
      assert.equal(counts.accepted + counts.rejected, VALIDATION_RUNS);
      assert.ok(counts.accepted > VALIDATION_RUNS / 100, "the generator reaches valid requests");
    } finally {
      removeDir(dir);
    }
  },
);

type Action =
  | { kind: "create"; spec: Record<string, unknown>; owner: unknown; requestId: unknown }
  | { kind: "delete"; id: unknown; key: Record<string, unknown> | null }
  | { kind: "reconcile"; owner: unknown; desired: Record<string, unknown>[]; dryRun: boolean }
  | { kind: "read"; id: unknown; owner: unknown }
  | { kind: "raw"; method: string; bytes: Uint8Array };

function barFiles(t: TestAgent): string[] {
  const root = simulatedSysfsRoot(t.config);
  return readdirSync(root).flatMap((d) =>
    readdirSync(join(root, d)).filter((f) => /^resource\d$/.test(f)).map((f) => join(root, d, f))
  );
}

Deno.test(
  `fuzz: ${SERVER_RUNS} generated calls at the running server: it survives, arms nothing unsafe, and a rejection changes nothing`,
  opts,
  async () => {
    const t = await startAgent({ rateLimitPerSecond: 0 });
    const src = await SourceProcess.start(8);
    const raw = new grpc.Client(t.agent.server.bound[0], grpc.credentials.createInsecure());
    try {
      const bars = barFiles(t);
      for (const bar of bars) assert.deepEqual(nonZeroRanges(bar), [], `${bar} starts zeroed`);
      const devices = t.agent.inventory.list();
      const sources = { pids: [src.pid], fds: src.fds };
      const spec = rawSpec(devices, sources);
      const owner = fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom("vm-a", "vm-b", "vm-c") },
        { weight: 1, arbitrary: junk },
      );
      const known: string[] = [];
      const action: fc.Arbitrary<Action> = fc.oneof(
        {
          weight: 12,
          arbitrary: fc.record({
            kind: fc.constant("create" as const),
            spec,
            owner,
            requestId: fc.oneof(fc.constant(""), fc.constantFrom("r-1", "r-2"), junk),
          }),
        },
        {
          weight: 3,
          arbitrary: fc.record({
            kind: fc.constant("delete" as const),
            id: fc.oneof(fc.nat().map((i) => known[i % Math.max(1, known.length)] ?? ""), junk),
            key: fc.option(spec, { nil: null }),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            kind: fc.constant("reconcile" as const),
            owner,
            desired: fc.array(spec, { maxLength: 4 }),
            dryRun: fc.boolean(),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({ kind: fc.constant("read" as const), id: junk, owner: junk }),
        },
        {
          weight: 4,
          arbitrary: rawCall(devices.map((d) => d.address)).map((c) => ({
            kind: "raw" as const,
            ...c,
          })),
        },
      );

      const registry = t.agent.registry;
      const ids = () => registry.all().map((r) => r.id);
      /** Every range any registration was ever armed at: the only bytes allowed to change. */
      const armedAt: Map<string, ByteRange[]> = new Map(bars.map((b) => [b, []]));
      const calls = { ok: 0, rejected: 0, clientSide: 0 };
      const codes = new Map<string, number>();
      let accepted = 0;
      let step = 0;

      const send = (a: Action): Promise<unknown> => {
        const deadline = { deadlineMs: 5000 };
        switch (a.kind) {
          case "create":
            return t.client.create(
              { spec: a.spec, owner: a.owner, requestId: a.requestId } as never,
              deadline,
            );
          case "delete":
            return t.client.delete((a.key ? { key: a.key } : { id: a.id }) as never, deadline);
          case "reconcile":
            return t.client.reconcile(
              { owner: a.owner, desired: a.desired, dryRun: a.dryRun } as never,
              deadline,
            );
          case "read":
            return Promise.all([
              t.client.get(a.id as never, deadline),
              t.client.list({ owner: a.owner } as never, deadline),
            ]);
          case "raw":
            return new Promise((resolve, reject) =>
              raw.makeUnaryRequest(
                `/ioeventd.v1.IoeventfdService/${a.method}`,
                (b: Buffer) => b,
                (b: Buffer) => b,
                Buffer.from(a.bytes),
                new grpc.Metadata(),
                { deadline: Date.now() + 5000 },
                (err, res) => (err ? reject(err) : resolve(res)),
              )
            );
        }
      };

      const started = performance.now();
      await fc.assert(
        fc.asyncProperty(action, async (a) => {
          const revision = registry.revision;
          const before = ids();
          let failed: grpc.ServiceError | null = null;
          try {
            await send(a);
          } catch (err) {
            failed = err as grpc.ServiceError;
          }
          const after = ids();
          if (failed) {
            if (
              typeof failed.code !== "number" ||
              failed.details?.startsWith("Request message serialization failure")
            ) {
              calls.clientSide++; // the client could not encode it: never sent
            } else {
              calls.rejected++;
              const reason = decodeStatus(failed)?.reason ||
                (failed.details === "Error deserializing request" ? "UNDECODABLE" : "");
              // Every refusal is a deliberate one: no handler threw, the engine refused nothing
              // that validation let through.
              assert.ok(reason, `${grpc.status[failed.code]} without a reason: ${failed.details}`);
              assert.notEqual(reason, "ENGINE_FAILURE", failed.details);
              codes.set(reason, (codes.get(reason) ?? 0) + 1);
            }
            assert.equal(registry.revision, revision, `rejected ${a.kind} changed the revision`);
            assert.deepEqual(after, before, `rejected ${a.kind} changed the ioeventfds`);
          } else {
            calls.ok++;
            const added = after.filter((id) => !before.includes(id));
            const removed = before.filter((id) => !after.includes(id));
            accepted += added.length - removed.length;
            for (const id of added) {
              const r = registry.get(id);
              const why = unsafe(r.spec, t.agent.inventory.get(r.spec.device));
              if (why) throw new Error(`armed an unsafe write (${why}): ${JSON.stringify(a)}`);
              const bar = t.agent.inventory.get(r.spec.device)!.bars[r.spec.bar].resourcePath!;
              const start = Number(r.spec.offset);
              armedAt.get(bar)!.push({ start, end: start + r.spec.width });
              known.push(id);
            }
          }
          assert.equal(t.agent.engine.info().registrations, registry.size);
          // Signal every source now and then: armed writes land during the run too.
          if (++step % 250 === 0) { for (let i = 0; i < src.fds.length; i++) await src.signal(i); }
        }),
        { numRuns: SERVER_RUNS },
      );
      const ms = Math.round(performance.now() - started);

      // Still serving, and the three views of the ioeventfds agree.
      const info = await t.client.info();
      assert.equal(info.ready, true);
      assert.equal(t.agent.engine.info().alive, true);
      assert.equal(registry.size, accepted);
      assert.equal(t.agent.engine.info().registrations, accepted);
      assert.equal((await t.client.listAll()).length, accepted);

      // Every source eventfd fires its ioeventfds (those sharing one eventfd take turns: one
      // read empties its counter), then no byte of any BAR changed outside what was armed.
      const fired = () => {
        const stats = registry.stats();
        const byFd = new Map<number, boolean>();
        for (const r of registry.all()) {
          const hit = (stats.get(r.nativeId!)?.triggers ?? 0n) > 0n;
          byFd.set(r.spec.source.fd, (byFd.get(r.spec.source.fd) ?? false) || hit);
        }
        return [...byFd].filter(([, hit]) => !hit).map(([fd]) => fd);
      };
      for (let i = 0; i < src.fds.length; i++) await src.signal(i);
      const until = Date.now() + 5000;
      while (Date.now() < until && fired().length > 0) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(fired(), [], "every source eventfd with ioeventfds made a write");
      for (const bar of bars) assert.deepEqual(strayBytes(bar, armedAt.get(bar)!), [], bar);

      console.log(
        `server: ${SERVER_RUNS} calls in ${ms} ms: ${calls.ok} ok, ${calls.rejected} rejected, ` +
          `${calls.clientSide} not encodable; ${accepted} armed at the end; rejections: ${
            JSON.stringify(Object.fromEntries([...codes].sort((x, y) => y[1] - x[1])))
          }`,
      );
      assert.ok(calls.ok > SERVER_RUNS / 20, "the generator reaches valid calls");
      assert.ok(accepted > 0);
    } finally {
      raw.close();
      await src.kill();
      await t.stop();
    }
  },
);
