// Every number ioeventctl reads, on a command line or in a file, goes through one parser:
// decimal or 0x-hex, nothing else (exit 2), and reaches the agent as the number it names.
// Above all a delete by key removes the entry with exactly that key, never another
// (protobufjs reads the string "0x88704" as 0: the entry at offset 0, of any owner).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseFleetArgs } from "../../service/cli/fleet_options.ts";
import { normalizeAddress } from "../../service/cli/fleet_hosts.ts";
import { readNumber } from "../../service/cli/numbers.ts";
import { GPU, tempDir } from "../support/agent.ts";
import { ctl, startCliAgent } from "../support/ioeventctl.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const hex = (n: number) => "0x" + n.toString(16);

interface Listed {
  id: string;
  owner: string;
  spec: {
    bar: number;
    offset: string;
    width: number;
    data: string;
    source: { pid: number; fd: number; handle: string };
  };
}

Deno.test("numbers: decimal and 0x-hex, and nothing else", () => {
  for (const [text, n] of [["0", 0n], ["42", 42n], ["0x2a", 42n], ["0X2A", 42n], ["007", 7n]]) {
    assert.equal(readNumber(text), n, String(text));
  }
  assert.equal(readNumber("0xffffffffffffffff"), (1n << 64n) - 1n);
  assert.equal(readNumber(12), 12n); // a JSON number
  for (
    const bad of ["", " 1", "1 ", "-1", "+1", "1e3", "1.0", "0x", "0b1", "0o7", "1_000", "٣", "x1"]
  ) {
    assert.equal(readNumber(bad), null, JSON.stringify(bad));
  }
  for (const bad of [-1, 1.5, 2 ** 53, NaN, Infinity, null, true]) {
    assert.equal(readNumber(bad), null, String(bad));
  }
  // The fleet's numbers too: --concurrency and the ports of a host list.
  assert.equal(parseFleetArgs(["info", "--hosts", "a", "--concurrency", "0x10"])?.concurrency, 16);
  assert.equal(parseFleetArgs(["info", "--hosts", "a", "--concurrency", "16"])?.concurrency, 16);
  assert.throws(() => parseFleetArgs(["info", "--hosts", "a", "--concurrency", "1e1"]), /0x-hex/);
  assert.equal(normalizeAddress("node:0x1f90"), "node:8080");
  assert.equal(normalizeAddress("[::1]:0x1f90"), "[::1]:8080");
});

/** An agent, a source of eventfds, and the CLI calls the tests below make. */
async function setup(fds: number) {
  const t = await startCliAgent();
  const src = await SourceProcess.start(fds);
  const address = t.agent.server.bound[0];
  const create = (owner: string, f: Record<string, string>) =>
    ctl(
      address,
      "--json",
      "create",
      ...Object.entries({ device: GPU, ...f, owner }).flatMap(([k, v]) => [`--${k}`, v]),
    );
  const listed = async () => JSON.parse((await ctl(address, "--json", "list")).out) as Listed[];
  const idOf = (r: { out: string }) => (JSON.parse(r.out) as Listed).id;
  const deleteKey = (offset: string, data = "0", width = "4", bar = "0") =>
    ctl(
      address,
      "--json",
      "delete",
      ...["--device", GPU, "--bar", bar, "--offset", offset, "--width", width, "--data", data],
    );
  return {
    t,
    src,
    address,
    create,
    listed,
    idOf,
    deleteKey,
    async stop() {
      await src.kill();
      await t.stop();
    },
  };
}

Deno.test(
  "ioeventctl delete by key: removes exactly that key, of no other owner; an absent key exits 4",
  opts,
  async () => {
    const { src, create, listed, idOf, deleteKey, stop } = await setup(2);
    try {
      const source = (i: number) => ({ pid: String(src.pid), fd: String(src.fds[i]) });
      const key = { bar: "0", width: "4", data: "0" };
      const victim = await create("vm-victim", { ...key, offset: "0", ...source(0) });
      assert.equal(victim.code, 0, victim.err);
      const target = await create("vm-cli", { ...key, offset: "0x88704", ...source(1) });
      assert.equal(target.code, 0, target.err);

      // The bug: protobufjs read "0x88704" as 0 and this removed vm-victim's entry.
      const del = await deleteKey("0x88704");
      assert.equal(del.code, 0, del.err + del.out);
      assert.equal(idOf(del), idOf(target));
      assert.deepEqual((await listed()).map((i) => i.id), [idOf(victim)]);

      // The same key again names nothing: exit 4 (NOT_FOUND), and nothing else goes.
      const again = await deleteKey("0x88704");
      assert.equal(again.code, 4, again.err + again.out);
      assert.equal((JSON.parse(again.out) as { error: string }).error, "NOT_FOUND");
      assert.deepEqual((await listed()).map((i) => i.id), [idOf(victim)]);
      assert.equal((await deleteKey("0", "0", "4")).code, 0);
      assert.deepEqual(await listed(), []);
    } finally {
      await stop();
    }
  },
);

Deno.test(
  "ioeventctl: every numeric flag of create, delete and reconcile files in decimal and 0x-hex",
  opts,
  async () => {
    const { src, create, listed, idOf, deleteKey, address, stop } = await setup(4);
    try {
      // Every numeric flag of create in hex...
      const hexed = await create("vm-cli", {
        bar: "0x0",
        offset: "0x88704",
        width: "0x4",
        data: "0xff",
        pid: hex(src.pid),
        fd: hex(src.fds[1]),
      });
      assert.equal(hexed.code, 0, hexed.err);
      // ...and in decimal.
      const dec = await create("vm-cli", {
        bar: "0",
        offset: String(0x100),
        width: "2",
        data: String(0xbeef),
        pid: String(src.pid),
        fd: String(src.fds[2]),
      });
      assert.equal(dec.code, 0, dec.err);
      const byId = new Map((await listed()).map((i) => [i.id, i.spec]));
      assert.deepEqual(byId.get(idOf(hexed)), {
        ...byId.get(idOf(hexed)),
        bar: 0,
        offset: String(0x88704),
        width: 4,
        data: "255",
        source: { pid: src.pid, fd: src.fds[1], handle: "" },
      });
      assert.deepEqual(byId.get(idOf(dec)), {
        ...byId.get(idOf(dec)),
        bar: 0,
        offset: "256",
        width: 2,
        data: String(0xbeef),
        source: { pid: src.pid, fd: src.fds[2], handle: "" },
      });

      // --vfio-pid/--vfio-fd in hex reach the agent as numbers: the process is found and
      // it has no descriptor 999 (0x3e7).
      const vfio = await create("vm-cli", {
        bar: "0",
        offset: "0x200",
        width: "4",
        data: "1",
        pid: String(src.pid),
        fd: String(src.fds[3]),
        "vfio-pid": hex(src.pid),
        "vfio-fd": "0x3e7",
      });
      assert.equal(vfio.code, 4, vfio.err + vfio.out);
      const refusal = JSON.parse(vfio.out) as { error: string; violations: unknown[] };
      assert.equal(refusal.error, "VFIO_DEVICE_INVALID");
      assert.match(JSON.stringify(refusal.violations), /no such open file descriptor/);

      // The key flags of delete, in hex for the decimal entry and in decimal for the hex one.
      assert.equal((await deleteKey("0x100", "0xbeef", "0x2", "0x0")).code, 0);
      assert.equal((await deleteKey(String(0x88704), "255", "4", "0")).code, 0);
      assert.deepEqual(await listed(), []);

      // Anything but decimal or 0x-hex is a usage error naming the flag, before any call.
      for (const flag of ["bar", "offset", "width", "data", "pid", "fd", "vfio-pid", "vfio-fd"]) {
        const r = await create("vm-cli", {
          bar: "0",
          offset: "0x300",
          width: "4",
          data: "1",
          pid: String(src.pid),
          fd: String(src.fds[3]),
          [flag]: "1e3",
        });
        assert.equal(r.code, 2, flag);
        assert.match(r.err, new RegExp(`--${flag}: must be a decimal or 0x-hex integer`), flag);
      }
      for (const [i, flag] of ["bar", "offset", "width", "data"].entries()) {
        const values = ["0", "0x300", "4", "1"];
        values[i] = "-1";
        const r = await deleteKey(values[1], values[3], values[2], values[0]);
        assert.equal(r.code, 2, flag);
        assert.match(r.err, new RegExp(`--${flag}: must be a decimal or 0x-hex integer`), flag);
      }

      // A reconcile file's numbers: JSON numbers, or decimal or hex text.
      const file = join(tempDir(), "desired.json");
      const entry = (over: Record<string, unknown>) => ({ device: GPU, ...over });
      writeFileSync(
        file,
        JSON.stringify({
          owner: "vm-file",
          desired: [
            entry({
              bar: "0x0",
              offset: "0x400",
              width: "0x4",
              data: "0x10",
              source: { pid: hex(src.pid), fd: hex(src.fds[0]) },
            }),
            entry({
              bar: 0,
              offset: 1028,
              width: 4,
              data: "17",
              source: { pid: src.pid, fd: String(src.fds[1]) },
            }),
          ],
        }),
      );
      const rec = await ctl(address, "reconcile", "-f", file);
      assert.equal(rec.code, 0, rec.err);
      const keys = (await listed()).map((i) => [i.spec.offset, i.spec.data]).sort();
      assert.deepEqual(keys, [["1024", "16"], ["1028", "17"]]);
    } finally {
      await stop();
    }
  },
);
