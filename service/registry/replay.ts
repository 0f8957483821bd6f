// Start-up: every journaled ioeventfd is armed again through the same validation as the API,
// and only from the same source (the process start time and eventfd id it was journaled with),
// so a reused PID or a replaced fd is never rebound. A record whose device is gone or no
// longer managed is kept as ORPHANED; one that can no longer be armed is dropped and reported.
import { Rejection } from "../rejection/rejection.ts";
import type { Arming } from "./arming.ts";
import type { AcquiredSource } from "./data_plane.ts";
import type { JournalRecord } from "./journal.ts";
import { fromRecord, type Registration } from "./registration.ts";
import type { AcquiredVfio, Sources } from "./sources.ts";
import {
  orphanCause,
  type RawSpec,
  validateShape,
  validateSpec,
  type ValidationContext,
} from "./validation.ts";

export interface ReplayReport {
  rearmed: number;
  orphaned: string[];
  /** Handed-over registrations waiting for their sender to hand the eventfd over again. */
  needsSource: string[];
  dropped: { id: string; reason: string }[];
  durationMs: number;
}

export interface ReplayOutcome {
  /** What to index: re-armed and orphaned registrations. */
  registrations: Registration[];
  /** Journal ids to remove (dropped). */
  drop: string[];
  report: ReplayReport;
}

const AT = "journal.";

function rawSpecOf(rec: JournalRecord): RawSpec {
  return {
    device: rec.device,
    bar: rec.bar,
    offset: rec.offset,
    width: rec.width,
    data: rec.data,
    // fd -1: handed over (validated as a descriptor number, then marked again below).
    source: { pid: rec.pid, fd: Math.max(rec.fd, 0) },
    labels: rec.labels,
    vfioDevice: rec.vfio ? { pid: rec.vfio.pid, fd: Math.max(rec.vfio.fd, 0) } : null,
  };
}

/** Whether a record's source or VFIO device was handed over (journaled with fd -1). */
function handedOver(rec: JournalRecord): boolean {
  return rec.fd === -1 || rec.vfio?.fd === -1;
}

/** The spec as it was armed: handed-over descriptors keep fd -1 (and no handle). */
function markHandedOver<T extends { source: { pid: number; fd: number } }>(
  spec: T & { vfioDevice?: { pid: number; fd: number } | null },
  rec: JournalRecord,
): T {
  if (rec.fd === -1) spec.source = { pid: rec.pid, fd: -1 };
  if (rec.vfio?.fd === -1 && spec.vfioDevice) spec.vfioDevice = { pid: rec.vfio.pid, fd: -1 };
  return spec;
}

/** Why a record could not be re-armed, as the replay report names it. */
function dropReason(err: unknown): string {
  return err instanceof Rejection ? err.metadata.cause ?? err.reason : String(err);
}

export function replayJournal(
  records: readonly JournalRecord[],
  ctx: ValidationContext,
  sources: Sources,
  arming: Arming,
): ReplayOutcome {
  const started = performance.now();
  const report: ReplayReport = {
    rearmed: 0,
    orphaned: [],
    needsSource: [],
    dropped: [],
    durationMs: 0,
  };
  const registrations: Registration[] = [];
  const drop: string[] = [];
  const dropped = (rec: JournalRecord, reason: string) => {
    report.dropped.push({ id: rec.id, reason });
    drop.push(rec.id);
  };
  for (const rec of records) {
    const raw = rawSpecOf(rec);
    const shape = validateShape(raw, AT);
    if (!shape.ok) {
      dropped(rec, shape.violations[0].reason); // not a record this agent wrote
      continue;
    }
    markHandedOver(shape.value, rec);
    const v = validateSpec(raw, ctx, AT);
    if (!v.ok) {
      // Its device is gone, unmanaged or changed: kept as the journal had it, for the owner
      // to see and delete, with the rule it now fails.
      const orphan = fromRecord(rec, shape.value, "ORPHANED", rec.backend, null);
      orphan.orphanCause = orphanCause(shape.value, ctx) ?? v.violations[0].reason;
      registrations.push(orphan);
      report.orphaned.push(rec.id);
      continue;
    }
    const spec = markHandedOver(v.value, rec);
    if (handedOver(rec)) {
      // The agent holds no copy across a restart: the registration waits for its sender to
      // hand the same eventfd over again (Registry.handoverReceived), unless it is gone.
      if (sources.processStart(rec.pid) !== rec.startTime) {
        dropped(rec, "SOURCE_PROCESS_GONE");
        continue;
      }
      registrations.push(fromRecord(rec, spec, "NEEDS_SOURCE", rec.backend, null));
      report.needsSource.push(rec.id);
      continue;
    }
    // The VMM's VFIO device first, only from the same process (its start time as journaled).
    let vfio: AcquiredVfio | null = null;
    let source: AcquiredSource | null = null;
    try {
      if (rec.vfio) {
        vfio = sources.acquireVfio(spec, AT, new Map(), rec.vfio.startTime);
        // An agent killed without its clean stop leaves its kernel-served entries in the
        // kernel (they belong to the device, which the VMM still holds), still writing. This
        // key was ours (journaled): remove it, then re-arm it below, or, if the eventfd is
        // gone or replaced, leave nothing behind. Signals in between stay counted in the
        // eventfd and fire on re-arm.
        if (vfio) arming.forgetKernelEntry(spec, vfio.fd);
      }
      source = sources.acquire(spec, AT, { startTime: rec.startTime, eventfdId: rec.eventfdId });
      const armed = arming.arm(spec, source, vfio, AT);
      registrations.push(fromRecord(rec, spec, "ARMED", armed.backend, armed.id));
      report.rearmed++;
    } catch (err) {
      if (source) sources.release(source);
      dropped(rec, dropReason(err));
    } finally {
      sources.releaseVfio(vfio);
    }
  }
  report.durationMs = performance.now() - started;
  return { registrations, drop, report };
}
