// `ioeventctl fleet` against three real agents on three loopback addresses, each with its
// own simulated host and its own armed ioeventfds: every command right while all are up;
// then one agent stops (SIGTERM) and every command names that host, exits 1, and still
// reports the other two correctly. A host that hangs costs only its timeout.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../../service/version.ts";
import { removeDir, tempDir } from "../support/agent.ts";
import {
  arm,
  blackhole,
  CLI,
  type FleetAgent,
  ioeventctl,
  startFleetAgent,
  stopFleetAgent,
} from "./cluster.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface HostJson {
  name: string;
  address: string;
  ok: boolean;
  errors: string[];
  message: string;
  data: Record<string, string | number | boolean>;
  items?: { id: string; owner: string; state: string }[];
}
interface ResultJson {
  command: string;
  ok: boolean;
  summary: { total: number; ok: number; failed: number; failedHosts: string[] };
  hosts: HostJson[];
}

function parse(out: string): ResultJson {
  return JSON.parse(out) as ResultJson;
}

function byName(doc: ResultJson): Record<string, HostJson> {
  return Object.fromEntries(doc.hosts.map((h) => [h.name, h]));
}

/** The table row of one host (the first column is its name). */
function row(out: string, name: string): string {
  const line = out.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no row for ${name} in:\n${out}`);
  return line;
}

Deno.test(
  "fleet: info, health, list, watch, rollout-gate over three agents; one stops",
  opts,
  async (t) => {
    const dir = tempDir("ioeventd-fleet-hosts-");
    // Three agents with 1, 2 and 3 ioeventfds: counts tell the hosts apart.
    const agents: FleetAgent[] = await Promise.all([
      startFleetAgent("a", "127.0.0.11", 1),
      startFleetAgent("b", "127.0.0.12", 2),
      startFleetAgent("c", "127.0.0.13", 3),
    ]);
    const [a, b, c] = agents;
    const hostsFile = join(dir, "hosts");
    writeFileSync(
      hostsFile,
      "# the test fleet\n" + agents.map((x) => `${x.name}=${x.tcp}  # ${x.owner}`).join("\n") +
        "\n",
    );
    const fleet = (...args: string[]) =>
      ioeventctl("fleet", ...args, "--hosts", hostsFile, "--timeout", "2s");
    let stopped = false;
    try {
      await t.step("info: every host, its version and readiness", async () => {
        const r = await fleet("info", "--json");
        assert.equal(r.code, 0, r.err + r.out);
        const doc = parse(r.out);
        assert.deepEqual(doc.summary, { total: 3, ok: 3, failed: 0, failedHosts: [] });
        assert.deepEqual(doc.hosts.map((h) => h.name), ["a", "b", "c"]);
        for (const h of doc.hosts) {
          assert.equal(h.data.version, VERSION);
          assert.equal(h.data.ready, true);
          assert.equal(h.address, agents.find((x) => x.name === h.name)!.tcp);
        }
      });

      await t.step("info for people: a table, a summary, a progress line", async () => {
        const r = await fleet("info", "--progress");
        assert.equal(r.code, 0, r.err);
        for (const x of agents) assert.match(row(r.out, x.name), new RegExp(`ok\\s+${VERSION}`));
        assert.match(r.out, /fleet info: 3 hosts, 3 ok, 0 failed/);
        assert.match(r.err, /fleet info: 3\/3 answered, 0 failed/);
      });

      await t.step("--json before `fleet` works too, and a comma list", async () => {
        const r = await ioeventctl("--json", "fleet", "health", "--hosts", `${a.tcp},${c.tcp}`);
        assert.equal(r.code, 0, r.err);
        assert.deepEqual(parse(r.out).hosts.map((h) => h.data.health), ["SERVING", "SERVING"]);
      });

      await t.step("health: SERVING everywhere", async () => {
        const r = await fleet("health");
        assert.equal(r.code, 0, r.err + r.out);
        for (const x of agents) assert.match(row(r.out, x.name), /ok\s+SERVING/);
      });

      await t.step("list: each host's own ioeventfds", async () => {
        const r = await fleet("list", "--json");
        assert.equal(r.code, 0, r.err + r.out);
        const hosts = byName(parse(r.out));
        for (const x of agents) {
          assert.equal(hosts[x.name].data.ioeventfds, x.ids.length);
          assert.equal(hosts[x.name].data.armed, x.ids.length);
          assert.deepEqual(hosts[x.name].items!.map((i) => i.id).sort(), [...x.ids].sort());
        }
        const owned = byName(parse((await fleet("list", "--json", "--owner", b.owner)).out));
        assert.deepEqual([
          owned.a.data.ioeventfds,
          owned.b.data.ioeventfds,
          owned.c.data.ioeventfds,
        ], [
          0,
          2,
          0,
        ]);
      });

      await t.step("rollout-gate: passes on the running version, fails on another", async () => {
        const pass = await fleet("rollout-gate", "--version", VERSION);
        assert.equal(pass.code, 0, pass.err + pass.out);
        assert.match(pass.out, /fleet rollout-gate: 3 hosts, 3 ok, 0 failed/);
        const fail = await fleet("rollout-gate", "--version", "99.0.0", "--json");
        assert.equal(fail.code, 1);
        for (const h of parse(fail.out).hosts) {
          assert.equal(h.ok, false);
          assert.deepEqual(h.errors, ["VERSION_MISMATCH"]);
          assert.match(h.message, new RegExp(`runs ${VERSION}, want 99\\.0\\.0`));
        }
      });

      await t.step("watch: a snapshot per host, then live changes, host-prefixed", async () => {
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-all", CLI, "fleet", "watch", "--hosts", hostsFile, "--json"]
            .concat(["--duration", "4s"]),
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const lines: string[] = [];
        const reading = (async () => {
          let rest = "";
          for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
            const parts = (rest + chunk).split("\n");
            rest = parts.pop() ?? "";
            lines.push(...parts.filter(Boolean));
          }
          if (rest) lines.push(rest);
        })();
        const waitFor = async (pred: () => boolean, what: string) => {
          const deadline = Date.now() + 5000;
          while (!pred()) {
            if (Date.now() > deadline) throw new Error(`no ${what} in:\n${lines.join("\n")}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        };
        const events = () =>
          lines.map((l) => JSON.parse(l) as { host?: string; event?: { type: string } })
            .filter((l) => l.event);
        await waitFor(
          () => events().filter((e) => e.event!.type === "SNAPSHOT").length === 3,
          "three snapshots",
        );
        const id = await arm(a, a.ids.length);
        await waitFor(
          () => events().some((e) => e.host === "a" && e.event!.type === "ADDED"),
          "ADDED on a",
        );
        await a.proc.client.delete({ id });
        await waitFor(
          () => events().some((e) => e.host === "a" && e.event!.type === "REMOVED"),
          "REMOVED on a",
        );
        const status = await child.status;
        await reading;
        await child.stderr.cancel();
        assert.equal(status.code, 0, lines.join("\n"));
        const last = parse(lines[lines.length - 1]);
        assert.equal(last.command, "watch");
        assert.deepEqual(last.summary.failed, 0);
        assert.deepEqual(byName(last).a.data.events, 3); // SNAPSHOT, ADDED, REMOVED
        assert.equal(events().filter((e) => e.host === "b").length, 1);
      });

      // One host goes away.
      const t0 = performance.now();
      await stopFleetAgent(b);
      stopped = true;
      assert.ok(performance.now() - t0 < 10_000);

      await t.step("info after b stopped: b failed, a and c unchanged, exit 1", async () => {
        const r = await fleet("info", "--json");
        assert.equal(r.code, 1, r.out);
        const doc = parse(r.out);
        assert.deepEqual(doc.summary, { total: 3, ok: 2, failed: 1, failedHosts: ["b"] });
        const hosts = byName(doc);
        assert.deepEqual(hosts.b.errors, ["UNREACHABLE"]);
        assert.equal(hosts.a.data.version, VERSION);
        assert.equal(hosts.c.data.ready, true);
        assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
      });

      await t.step("health after b stopped: b's row says why, the summary names it", async () => {
        const r = await fleet("health");
        assert.equal(r.code, 1);
        assert.match(row(r.out, "b"), /FAIL.*UNREACHABLE/);
        assert.match(row(r.out, "a"), /ok\s+SERVING/);
        assert.match(row(r.out, "c"), /ok\s+SERVING/);
        assert.match(r.out, /fleet health: 3 hosts, 2 ok, 1 failed \(b\)/);
      });

      await t.step("list after b stopped: the others still list their own", async () => {
        const r = await fleet("list", "--json");
        assert.equal(r.code, 1);
        const hosts = byName(parse(r.out));
        assert.equal(hosts.a.data.ioeventfds, 1);
        assert.equal(hosts.c.data.ioeventfds, 3);
        assert.equal(hosts.b.ok, false);
      });

      await t.step("rollout-gate after b stopped: the gate is closed, b named", async () => {
        const r = await fleet("rollout-gate", "--version", VERSION, "--json");
        assert.equal(r.code, 1);
        const hosts = byName(parse(r.out));
        assert.ok(hosts.a.ok && hosts.c.ok);
        assert.deepEqual(hosts.b.errors, ["UNREACHABLE"]);
      });

      await t.step("watch after b stopped: b reported, exit 1", async () => {
        const r = await fleet("watch", "--duration", "1s");
        assert.equal(r.code, 1, r.out);
        assert.match(row(r.out.split("\n\n").pop()!, "b"), /FAIL.*UNREACHABLE/);
        assert.match(r.out, /^a\s+SNAPSHOT 1 ioeventfds/m);
      });

      await t.step("a host that hangs costs its timeout, not the fleet's", async () => {
        const hole = blackhole("127.0.0.14");
        try {
          const r = await ioeventctl(
            "fleet",
            "health",
            "--json",
            "--timeout",
            "1s",
            "--hosts",
            `${a.tcp},hang=${hole.address},${c.tcp}`,
          );
          assert.equal(r.code, 1);
          const hosts = byName(parse(r.out));
          assert.deepEqual(hosts.hang.errors, ["TIMEOUT"]);
          assert.ok(hosts[a.tcp].ok && hosts[c.tcp].ok);
          // Deno's start-up plus one 1 s timeout, well short of three in a row.
          assert.ok(r.ms < 6000, `took ${r.ms} ms`);
        } finally {
          hole.close();
        }
      });

      await t.step("usage errors exit 2", async () => {
        assert.equal((await ioeventctl("fleet", "info")).code, 2); // no --hosts
        assert.equal((await ioeventctl("fleet", "reboot", "--hosts", a.tcp)).code, 2);
        assert.equal((await ioeventctl("fleet", "rollout-gate", "--hosts", a.tcp)).code, 2);
        // mTLS needs both halves of the client identity.
        assert.equal(
          (await ioeventctl("fleet", "info", "--hosts", a.tcp, "--tls-cert", CLI)).code,
          2,
        );
        const help = await ioeventctl("fleet", "--help");
        assert.equal(help.code, 0);
        assert.match(help.out, /rollout-gate --version V/);
      });
    } finally {
      for (const x of agents) if (x !== b || !stopped) await stopFleetAgent(x);
      removeDir(dir);
    }
  },
);
