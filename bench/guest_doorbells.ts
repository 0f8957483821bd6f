// "Guest doorbells" (#15): a real KVM guest (native/src/bin/ioeventd-kvm-vmm/, one vCPU,
// real mode) rings a 4-byte doorbell, the same guest code in every path:
//   ram       the doorbell segment points at guest RAM: the guest's own floor;
//   exit      no KVM ioeventfd: every store exits to the VMM, which writes the BAR itself;
//   bare      KVM_IOEVENTFD + a minimal epoll thread in the VMM doing the write (blocking);
//   bare-spin the same thread spinning on epoll_wait(0): the user-space limit;
//   ioeventd  KVM_IOEVENTFD + the agent, armed through CreateIoeventfd with the VMM's pid and
//             fd, in each poll mode (block, busy, adaptive; one agent process at a time).
// Two guest programs per path:
//   stores   N back-to-back stores; host CLOCK_MONOTONIC around KVM_RUN → ns per store; minus
//            the ram path's → the doorbell's overhead as the guest pays it.
//   latency  per doorbell: clear the register in the BAR memory slot (the guest maps the BAR
//            file the agent writes), rdtsc, store, poll the slot until the value is there,
//            rdtsc: doorbell → register-visible as the guest sees it. "net" subtracts the ram
//            path's (the guest's own clear + rdtsc + store + one poll).
// Rounds alternate every path, so slow drift of the machine's load hits each alike; medians of
// the per-round figures are reported, with /proc/loadavg before and after.
// Standalone: deno run --allow-all bench/guest_doorbells.ts [--quick]
import type { AgentClient } from "../service/cli/client.ts";
import { barPath, GPU, removeDir, spawnAgent, tempDir, testConfig } from "../test/support/agent.ts";
import { kvmUnavailable, type RunResult, Vmm, type VmmMode } from "../test/kvm/vmm.ts";
import { figuresOf, POLL_MODES, type Sample, targetsOf } from "./guest_doorbells/figures.ts";
import {
  clearFinal,
  colocation,
  finalLanded,
  loadavg,
  preemptions,
  settledCounters,
} from "./guest_doorbells/observations.ts";
import { printReport } from "./guest_doorbells/report.ts";

const VMM_PATHS: VmmMode[] = ["ram", "exit", "bare", "bare-spin"];

/**
 * Runs every path in alternating rounds, prints the table and the targets, and returns the
 * JSON report (`{ skipped }` without KVM). `quick`: fewer runs, for the CI smoke.
 */
export async function guestDoorbells(
  options: { quick?: boolean } = {},
): Promise<Record<string, unknown>> {
  const why = kvmUnavailable();
  if (why) {
    console.log(`\nGuest doorbells: skipped (${why})\n`);
    return { skipped: why };
  }
  const quick = options.quick ?? false;
  const STORES = quick ? 2000 : 2000; // per run
  const LATENCY = quick ? 1000 : 2000; // per run
  const RUNS = quick ? 2 : 4; // runs per path per round
  const ROUNDS = quick ? 1 : 4;
  const loadBefore = loadavg();
  const t0 = performance.now();

  const stateDir = tempDir("ioeventd-bench-kvm-");
  // The agent's simulated BAR0: the VMM maps it into its guest, the agent writes into it.
  let agent = await spawnAgent(stateDir, ["--poll-mode", "block"]);
  const bar0 = barPath(testConfig(stateDir), GPU, 0);
  const vmm = await Vmm.start(bar0, "ram");
  const samples = new Map<string, Sample[]>();
  const push = (label: string, s: Sample) => samples.set(label, [...(samples.get(label) ?? []), s]);
  try {
    const ids = new Map<string, string>();
    for (const name of ["w4", "final"] as const) {
      const d = vmm.doorbell(name);
      const created = await agent.client.create({
        owner: "bench-vm",
        spec: {
          device: GPU,
          bar: 0,
          offset: String(d.bar_offset),
          width: d.width,
          data: d.value,
          source: { pid: vmm.pid, fd: d.fd },
        },
      });
      ids.set(name, created.id);
    }
    agent.kill("SIGTERM");
    await agent.exited;
    agent.client.close();

    const measure = async (label: string, agentProcess?: { client: AgentClient; pid: number }) => {
      const agentClient = agentProcess?.client;
      const pids = [vmm.pid, ...(agentProcess ? [agentProcess.pid] : [])];
      await vmm.run("latency", 4, 200); // warm-up, discarded
      for (let k = 0; k < RUNS; k++) {
        clearFinal(bar0, vmm);
        const before = agentClient
          ? await settledCounters(agentClient, ids.get("w4")!, 0)
          : { triggers: 0, signals: 0 };
        const s: RunResult = await vmm.run("stores", 4, STORES);
        const landed = s.mode === "ram" ? null : await finalLanded(bar0, vmm);
        let signals = s.bare_signals;
        let wakeups = s.bare_writes;
        if (agentClient) {
          const after = await settledCounters(agentClient, ids.get("w4")!, before.signals + STORES);
          signals = after.signals - before.signals;
          wakeups = after.triggers - before.triggers;
        } else if (s.mode === "exit") {
          signals = s.exit_writes - 1; // one exit per store (the final one apart)
          wakeups = s.exit_writes - 1;
        } else if (s.mode === "bare" || s.mode === "bare-spin") {
          signals -= 1; // the final doorbell's
          wakeups -= 1;
        }
        const p0 = preemptions(pids);
        const c = await colocation(
          vmm.pid,
          agentProcess?.pid,
          vmm.run("latency", 4, LATENCY),
        );
        const l = c.result;
        push(label, {
          nsPerStore: s.ns / STORES,
          p50: l.p50_ns,
          p99: l.p99_ns,
          stores: STORES,
          signals,
          wakeups,
          exits: s.mmio_exits,
          finalLanded: landed,
          preemptions: preemptions(pids) - p0,
          sharedCpu: s.mode === "ram" || s.mode === "exit" ? 0 : c.share(),
        });
      }
    };

    await vmm.run("stores", 4, STORES); // warm-up of the whole VM, discarded
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of VMM_PATHS) {
        await vmm.mode(path);
        await measure(path);
      }
      await vmm.mode("ioeventd");
      for (const poll of POLL_MODES) {
        // The journal re-arms the two registrations in each new agent (same VMM, same fds).
        agent = await spawnAgent(stateDir, ["--poll-mode", poll]);
        try {
          await measure(`ioeventd ${poll}`, { client: agent.client, pid: agent.child.pid });
        } finally {
          agent.kill("SIGTERM");
          await agent.exited;
          agent.client.close();
        }
      }
      await vmm.mode("ram");
    }
  } finally {
    await vmm.close();
    agent.kill("SIGKILL");
    removeDir(stateDir);
  }
  const loadAfter = loadavg();

  const figures = figuresOf(samples);
  const targets = targetsOf(figures, loadAfter);
  const seconds = (performance.now() - t0) / 1000;
  printReport(figures, targets, {
    rounds: ROUNDS,
    runs: RUNS,
    stores: STORES,
    latency: LATENCY,
    loadBefore,
    loadAfter,
    seconds,
  });
  return {
    stores_per_round: STORES,
    latency_per_round: LATENCY,
    rounds: ROUNDS,
    loadavg_before: loadBefore,
    loadavg_after: loadAfter,
    seconds: +seconds.toFixed(1),
    figures,
    targets: targets.map((t) => ({
      ...t,
      measured: +t.measured.toFixed(3),
      net: t.net && +t.net.toFixed(3),
    })),
    raw: Object.fromEntries(samples),
  };
}

if (import.meta.main) {
  const r = await guestDoorbells({ quick: Deno.args.includes("--quick") });
  if (Deno.args.includes("--json")) console.log(JSON.stringify(r, null, 2));
}
