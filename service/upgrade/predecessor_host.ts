// What handing over to a successor does to this agent (predecessor.ts asks it): freeze its
// mutations and close the journal (one writer at a time), or take both back; duplicate the
// descriptors the successor cannot take itself; and, once the successor is armed, stop
// writing — disarm every worker-served registration (a barrier each) and leave the kernel's
// entries assigned, for the successor adopted them.
import type { NativeEngine } from "../native/engine.ts";
import { closeReceived, leaveKernelEntries, registrationFds } from "../native/succession.ts";
import type { Journal } from "../registry/journal.ts";
import type { Registry } from "../registry/registry.ts";
import type { PassedRegistration, PredecessorHost } from "./predecessor.ts";
import type { ReleaseReport } from "./protocol.ts";

export interface HandingOver {
  registry: Registry;
  journal: Journal;
  engine: NativeEngine;
  /** Told once this agent writes no more. */
  released(): void;
  /** Told once the successor has the report: this agent then leaves. */
  handedOver(): void;
}

export function predecessorHost(a: HandingOver): PredecessorHost {
  return {
    freeze: async () => {
      a.registry.stopAccepting();
      await a.registry.settled();
      // Every commit is on disk; the journal is locked exclusively while open, so the
      // successor can open it only once this agent has closed it.
      a.journal.close();
      return a.registry.revision;
    },
    resume: () => {
      a.journal.reopen();
      a.registry.resumeAccepting();
    },
    toPass: (): PassedRegistration[] =>
      a.registry.all()
        .filter((r) =>
          r.nativeId !== null &&
          (r.spec.source.fd === -1 || r.backend === "kernel" || r.spec.vfioDevice?.fd === -1)
        )
        .map((r) => ({ id: r.id, fds: () => registrationFds(a.engine.handle, r.nativeId!) })),
    release: (): ReleaseReport => {
      const kernelEntriesLeft = leaveKernelEntries(a.engine.handle);
      const ids = a.registry.all()
        .filter((r) => r.nativeId !== null && r.backend !== "kernel")
        .map((r) => r.nativeId!);
      let triggers = 0n;
      let signals = 0n;
      for (const outcome of a.engine.unregisterMany(ids)) {
        if (!outcome.ok) continue; // gone already (its source exited)
        triggers += outcome.final.triggers;
        signals += outcome.final.signals;
      }
      a.released();
      return { triggers, signals, kernelEntriesLeft };
    },
    handedOver: a.handedOver,
    closeFd: closeReceived,
  };
}
