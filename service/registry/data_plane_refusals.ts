// The one table from a data-plane failure (an errno of the native plugin) to what the caller
// is told: the rejection reason, the request field at fault and a sentence. Each stage of
// arming has its own column, because the same errno means different things at different
// stages (ESRCH: the source process is gone; for the VFIO device, its holder is).
import { type ErrnoName, errnoName, NativeError } from "../native/errno.ts";
import { type Reason, Rejection } from "../rejection/rejection.ts";

/**
 * source: taking the eventfd (acquireSource). vfio: taking the VMM's VFIO device fd.
 * arm: handing them to the data plane (register). arm-vfio: the same for a VFIO device
 * (registerVfio), where the kernel or the VFIO region may still refuse. For a sysfs BAR every
 * such rule was checked before arming, so any other refusal there is an engine failure (the
 * agent's view of the device was wrong), except the MSI-X rule, which the plugin re-checks
 * against the device's own config space on every backend.
 */
export type Stage = "source" | "vfio" | "arm" | "arm-vfio";

interface Refusal {
  reason: Reason;
  message: string;
  /** The field at fault, relative to the request's prefix; absent: the stage's own field. */
  field?: string;
  /** A finer cause for the replay report and ErrorInfo metadata. */
  cause?: string;
}

// The native plugin reads the device's config space itself and refuses a write into its MSI-X
// vector table (EADDRINUSE) or pending-bit array (EADDRNOTAVAIL), on every backend: the same
// rule, and the same reasons, as validation.ts's, should the agent's view of the device be
// stale (the layout moved since the last scan).
const MSIX_TABLE: Refusal = {
  reason: "OVERLAPS_MSIX_TABLE",
  field: "offset",
  message: "the data plane refused the write: it overlaps the MSI-X vector table in the " +
    "device's config space as it is now",
};
const MSIX_PBA: Refusal = {
  reason: "OVERLAPS_MSIX_PBA",
  field: "offset",
  message: "the data plane refused the write: it overlaps the MSI-X pending-bit array in the " +
    "device's config space as it is now",
};

const SOURCE_GONE = "the source process does not exist (or its PID was reused)";
const ACCESS = "the agent may not take file descriptors from that process";

const TABLE: Record<Stage, Partial<Record<ErrnoName, Refusal>>> = {
  source: {
    ESRCH: { reason: "SOURCE_PROCESS_GONE", message: SOURCE_GONE },
    EOWNERDEAD: { reason: "SOURCE_PROCESS_GONE", message: SOURCE_GONE, cause: "PID_REUSED" },
    EBADF: {
      reason: "SOURCE_FD_INVALID",
      message: "the source process has no such open file descriptor",
    },
    ESTALE: {
      reason: "SOURCE_FD_INVALID",
      message: "the source file descriptor now holds another eventfd",
      cause: "FD_REPLACED",
    },
    EMEDIUMTYPE: {
      reason: "SOURCE_NOT_EVENTFD",
      message: "the source file descriptor is not an eventfd",
    },
    EPERM: { reason: "SOURCE_ACCESS_DENIED", message: ACCESS },
    EACCES: { reason: "SOURCE_ACCESS_DENIED", message: ACCESS },
  },
  vfio: {
    ESRCH: { reason: "VFIO_DEVICE_INVALID", message: "the VFIO device's process does not exist" },
    EBADF: {
      reason: "VFIO_DEVICE_INVALID",
      message: "the VFIO device's process has no such open file descriptor",
    },
    EMEDIUMTYPE: {
      reason: "VFIO_DEVICE_INVALID",
      message: "the file descriptor is not a vfio-pci device",
    },
    EPERM: { reason: "SOURCE_ACCESS_DENIED", message: ACCESS },
    EACCES: { reason: "SOURCE_ACCESS_DENIED", message: ACCESS },
  },
  arm: {
    ESRCH: {
      reason: "SOURCE_PROCESS_GONE",
      field: "source",
      message: "the source process exited while the ioeventfd was being armed",
    },
    EADDRINUSE: MSIX_TABLE,
    EADDRNOTAVAIL: MSIX_PBA,
  },
  "arm-vfio": {
    ESRCH: {
      reason: "SOURCE_PROCESS_GONE",
      field: "source",
      message: "the source process exited while the ioeventfd was being armed",
    },
    EEXIST: {
      reason: "DUPLICATE",
      field: "offset",
      message: "the kernel already has an ioeventfd with this (bar, offset, width, data) on " +
        "this device, set by another holder of the device",
    },
    ERANGE: {
      reason: "OUT_OF_BAR",
      field: "offset",
      message: "the write is beyond the device's VFIO BAR region",
    },
    EOPNOTSUPP: {
      reason: "BAR_NOT_MAPPABLE",
      field: "bar",
      message: "the VFIO BAR region cannot be mapped",
    },
    ENODEV: {
      reason: "VFIO_DEVICE_INVALID",
      field: "vfio_device",
      message: "not a vfio-pci device",
    },
    EADDRINUSE: MSIX_TABLE,
    EADDRNOTAVAIL: MSIX_PBA,
  },
};

/** What a failure at `stage` means, or undefined when it is not a refusal (ENGINE_FAILURE). */
export function refusalOf(stage: Stage, err: unknown): Refusal | undefined {
  if (!(err instanceof NativeError)) return undefined;
  return TABLE[stage][errnoName(err.errno) as ErrnoName];
}

/**
 * The Rejection for a data-plane failure at `stage`. `at` prefixes fields; `field` is the
 * stage's own field; `suffix` names what was asked (" (pid 42, fd 7)").
 */
export function rejectionOf(
  stage: Stage,
  err: unknown,
  at: string,
  field: string,
  suffix = "",
): Rejection {
  const refusal = refusalOf(stage, err);
  if (refusal === undefined) {
    return new Rejection("ENGINE_FAILURE", `the data plane failed: ${err}`);
  }
  return Rejection.of(
    [{
      field: refusal.field ? `${at}${refusal.field}` : field,
      reason: refusal.reason,
      description: `${refusal.message}${suffix}`,
    }],
    refusal.cause ? { cause: refusal.cause } : {},
  );
}
