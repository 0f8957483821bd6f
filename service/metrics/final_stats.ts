// The native engine forgets a registration's counters when it is unregistered, but Prometheus
// counters must never go backwards: the per-device totals have to keep what a removed (or
// orphaned) ioeventfd counted, up to its very last write, not only up to the last scrape.
// This wraps the engine the registry drives so that its counters are read just before it goes.
import type { RegistrationStats } from "../native/engine.ts";
import type { DataPlane } from "../registry/registry.ts";

/** Called after a registration was unregistered, with its last counters (if it had any). */
export type RetireListener = (nativeId: bigint, last: RegistrationStats | undefined) => void;

export function keepFinalStats(engine: DataPlane, onRetire: RetireListener): DataPlane {
  // The registry unregisters a whole batch (a reconcile, a source exit) in one synchronous
  // loop: one snapshot serves the batch, so removing k of n costs O(n), not O(k·n).
  let batch: Map<bigint, RegistrationStats> | null = null;
  return {
    acquireSource: (pid, fd, expect) => engine.acquireSource(pid, fd, expect),
    releaseSource: (fd) => engine.releaseSource(fd),
    register: (request) => engine.register(request),
    // VFIO-backed devices (kernel / vfio-mmap backends), when the engine has them.
    ...(engine.registerVfio ? { registerVfio: (r) => engine.registerVfio!(r) } : {}),
    registrationStats: () => engine.registrationStats(),
    unregister(id) {
      if (batch === null) {
        batch = engine.registrationStats();
        queueMicrotask(() => (batch = null));
      }
      const last = batch.get(id);
      engine.unregister(id);
      onRetire(id, last);
    },
  };
}
