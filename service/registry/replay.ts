// Start-up: every journaled ioeventfd is armed again through the same validation as the API,
// and only from the same source (the process start time and eventfd id it was journaled with),
// so a reused PID or a replaced fd is never rebound. A record whose device is gone or no
// longer managed is kept as ORPHANED; one that can no longer be armed is dropped and reported.
// Every record is taken first, then all are armed with one registerMany (one control
// operation per worker instead of one per record). Taking over from a running agent
// (service/upgrade/), the descriptors it passed stand in for the handed-over ones, and its
// kernel-served entries are adopted.
import { Rejection } from "../rejection/rejection.ts";
import type { Arming } from "./arming.ts";
import type { InheritedFds } from "../upgrade/protocol.ts";
import type { AcquiredSource, RegistrationRequest, VfioRegistrationRequest } from "./data_plane.ts";
import type { JournalRecord } from "./journal.ts";
import { fromRecord, type Registration } from "./registration.ts";
import type { AcquiredVfio, Sources } from "./sources.ts";
import {
  orphanCause,
  type RawSpec,
  type Spec,
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
  /** Kernel-served entries adopted from a predecessor (taking over), not assigned again. */
  adopted: number;
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

/** A record whose source is still to take (with the others of its process). */
interface ToTake {
  seq: number;
  rec: JournalRecord;
  spec: Spec;
  vfio: AcquiredVfio | null;
}

/** A record taken and ready to arm: armed for all of them at once, in journal order. */
interface Pending {
  seq: number;
  rec: JournalRecord;
  spec: Spec;
  source: AcquiredSource;
  vfio: boolean;
  request: RegistrationRequest | VfioRegistrationRequest;
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
    adopted: 0,
    durationMs: 0,
  };
  const registrations: Registration[] = [];
  const drop: string[] = [];
  const dropped = (rec: JournalRecord, reason: string) => {
    report.dropped.push({ id: rec.id, reason });
    drop.push(rec.id);
  };
  const port = sources.handover;
  const pending: Pending[] = [];
  const toTake: ToTake[] = [];
  let seq = 0;
  // VFIO devices: one take per (pid, fd) for the whole replay; all released once armed
  // (the data plane keeps the duplicates it needs).
  const taken = new Map<string, AcquiredVfio>();
  const inheritedVfio: AcquiredVfio[] = [];
  try {
    for (const rec of records) {
      const raw = rawSpecOf(rec);
      const shape = validateShape(raw, AT);
      if (!shape.ok) {
        dropped(rec, shape.violations[0].reason); // not a record this agent wrote
        continue;
      }
      markHandedOver(shape.value, rec);
      const inherited = port.inherited(rec.id);
      const v = validateSpec(raw, ctx, AT);
      if (!v.ok) {
        // Its device is gone, unmanaged or changed: kept as the journal had it, for the
        // owner to see and delete, with the rule it now fails.
        closeInherited(sources, inherited);
        const orphan = fromRecord(rec, shape.value, "ORPHANED", rec.backend, null);
        orphan.orphanCause = orphanCause(shape.value, ctx) ?? v.violations[0].reason;
        registrations.push(orphan);
        report.orphaned.push(rec.id);
        continue;
      }
      const spec = markHandedOver(v.value, rec);
      if (handedOver(rec) && !covers(rec, inherited)) {
        // No copy survives a restart: the registration waits for its sender to hand the
        // same eventfd over again (Registry.handoverReceived), unless it is gone.
        closeInherited(sources, inherited);
        if (sources.processStart(rec.pid) !== rec.startTime) {
          dropped(rec, "SOURCE_PROCESS_GONE");
          continue;
        }
        registrations.push(fromRecord(rec, spec, "NEEDS_SOURCE", rec.backend, null));
        report.needsSource.push(rec.id);
        continue;
      }
      let vfio: AcquiredVfio | null = null;
      let source: AcquiredSource | null = null;
      try {
        // The VMM's VFIO device first, only from the same process (its start time).
        if (rec.vfio) {
          if (inherited?.vfio != null) {
            vfio = { fd: inherited.vfio, startTime: rec.vfio.startTime };
            inheritedVfio.push(vfio);
          } else vfio = sources.acquireVfio(spec, AT, taken, rec.vfio.startTime);
        }
        if (inherited?.eventfd == null) {
          // An agent killed without its clean stop leaves its kernel-served entries in the
          // kernel, still writing. This key was ours (journaled): remove it, then re-arm it
          // below, or, if the eventfd is gone or replaced, leave nothing behind. Signals in
          // between stay counted in the eventfd and fire on re-arm. (Not while a predecessor
          // runs: its entries are adopted.)
          if (vfio && !port.takingOver) arming.forgetKernelEntry(spec, vfio.fd);
          // Taken below, with the other sources of its process at once.
          toTake.push({ seq: seq++, rec, spec, vfio });
          continue;
        }
        source = { fd: inherited.eventfd, startTime: rec.startTime, eventfdId: rec.eventfdId };
        if (port.takingOver && rec.backend === "kernel" && vfio) {
          // The predecessor's kernel entry stays assigned (it belongs to the device, which
          // the VMM holds): adopted, never assigned twice.
          const armed = port.adoptKernel({
            vfioFd: vfio.fd,
            bar: spec.bar,
            offset: spec.offset,
            width: spec.width,
            data: spec.data,
            fd: source.fd,
            pid: spec.source.pid,
            pidStart: source.startTime,
          });
          registrations.push(fromRecord(rec, spec, "ARMED", armed.backend, armed.id));
          report.rearmed++;
          report.adopted++;
          continue;
        }
        pending.push({
          seq: seq++,
          rec,
          spec,
          source,
          vfio: vfio !== null,
          request: arming.request(spec, source, vfio),
        });
      } catch (err) {
        if (source) sources.release(source);
        dropped(rec, dropReason(err));
      }
    }
    // Every process's sources in one native call (one pidfd, one start-time read).
    const byProcess = new Map<string, ToTake[]>();
    for (const t of toTake) {
      const k = `${t.rec.pid}/${t.rec.startTime}`;
      const group = byProcess.get(k);
      if (group) group.push(t);
      else byProcess.set(k, [t]);
    }
    for (const group of byProcess.values()) {
      const { pid, startTime } = group[0].rec;
      const taken = sources.acquireMany(
        pid,
        startTime,
        group.map((t) => ({ fd: t.spec.source.fd, eventfdId: t.rec.eventfdId })),
        AT,
      );
      group.forEach((t, i) => {
        const source = taken[i];
        if (source instanceof Rejection) {
          dropped(t.rec, dropReason(source));
          return;
        }
        try {
          const request = arming.request(t.spec, source, t.vfio);
          pending.push({ ...t, source, vfio: t.vfio !== null, request });
        } catch (err) {
          sources.release(source);
          dropped(t.rec, dropReason(err));
        }
      });
    }
    pending.sort((a, b) => a.seq - b.seq); // ids in journal order
    // One control operation per worker for every record, instead of one per record.
    const outcomes = arming.armMany(pending.map((p) => p.request));
    pending.forEach((p, i) => {
      const o = outcomes[i];
      if (o.ok) {
        registrations.push(fromRecord(p.rec, p.spec, "ARMED", o.backend, o.id));
        report.rearmed++;
      } else {
        sources.release(p.source);
        dropped(p.rec, dropReason(arming.refusal(o.error, p.vfio, AT)));
      }
    });
  } finally {
    sources.releaseAllVfio(taken);
    for (const v of inheritedVfio) sources.releaseVfio(v);
  }
  // Journal order: the index lists registrations as they were created.
  const order = new Map(records.map((r, i) => [r.id, i]));
  registrations.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  report.durationMs = performance.now() - started;
  return { registrations, drop, report };
}

/** Whether the descriptors a predecessor passed are all a handed-over record needs. */
function covers(rec: JournalRecord, fds: InheritedFds | null): boolean {
  if (fds === null) return false;
  if (rec.fd === -1 && fds.eventfd === null) return false;
  if (rec.vfio?.fd === -1 && fds.vfio === null) return false;
  return true;
}

function closeInherited(sources: Sources, fds: InheritedFds | null): void {
  if (fds?.eventfd != null) sources.release({ fd: fds.eventfd, startTime: 0n, eventfdId: 0n });
  if (fds?.vfio != null) sources.releaseVfio({ fd: fds.vfio, startTime: 0n });
}
