//! The JSON lines the VMM prints: the first line (pid, KVM, the doorbells and their
//! eventfds) and each run's result, with the guest's TSC samples turned into nanoseconds.

use crate::doorbell_path::Mode;
use crate::guest_layout::{BAR_GPA, DOORBELLS, DOORBELL_GPA};
use crate::guest_program::Program;
use crate::vcpu_run::RunResult;
use crate::vmm::Vmm;
use ioeventd_native::sys::kvm::{Kvm, KVM_CAP_IOEVENTFD};
use std::os::fd::AsRawFd;

/// The `q` quantile of `sorted` (nearest rank; 0 when empty).
fn percentile(sorted: &[u32], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    u64::from(sorted[rank - 1])
}

/// One run's result line; `bare` is the bare consumer's (writes, signals) during it.
pub(crate) fn result_json(
    program: Program,
    width: u32,
    count: u32,
    mode: Mode,
    r: &RunResult,
    bare: (u64, u64),
) -> String {
    let mut sorted = r.samples.clone();
    sorted.sort_unstable();
    let ticks = r.tsc_end.wrapping_sub(r.tsc_start);
    // TSC ticks per ns, from the guest's own first and last rdtsc against the host's clock
    // around the whole run (the few µs of entry and exit are negligible over a run).
    let tpn = if r.ns > 0 && r.tsc_end > r.tsc_start {
        ticks as f64 / r.ns as f64
    } else {
        0.0
    };
    let ns = |t: u64| {
        if tpn > 0.0 {
            (t as f64 / tpn).round() as u64
        } else {
            0
        }
    };
    let mean = if sorted.is_empty() {
        0
    } else {
        sorted.iter().map(|&v| u64::from(v)).sum::<u64>() / sorted.len() as u64
    };
    format!(
        concat!(
            "{{\"program\":\"{}\",\"width\":{},\"count\":{},\"mode\":\"{}\",\"ns\":{},",
            "\"exits\":{},\"mmio_exits\":{},\"unmatched_mmio\":{},\"exit_writes\":{},",
            "\"progress\":{},\"tsc_ticks\":{},\"tsc_per_ns\":{:.4},\"samples\":{},",
            "\"p50_ns\":{},\"p99_ns\":{},\"max_ns\":{},\"mean_ns\":{},\"min_ns\":{},",
            "\"bare_writes\":{},\"bare_signals\":{},\"error\":{}}}"
        ),
        program.name(),
        width,
        count,
        mode.name(),
        r.ns,
        r.exits,
        r.mmio_exits,
        r.unmatched_mmio,
        r.exit_writes,
        r.progress,
        ticks,
        tpn,
        sorted.len(),
        ns(percentile(&sorted, 0.5)),
        ns(percentile(&sorted, 0.99)),
        ns(sorted.last().map_or(0, |&v| u64::from(v))),
        ns(mean),
        ns(sorted.first().map_or(0, |&v| u64::from(v))),
        bare.0,
        bare.1,
        r.error
            .as_ref()
            .map_or("null".to_string(), |e| format!("{e:?}")),
    )
}

/// The first line: pid, mode, KVM, where the BAR and the doorbells are, each doorbell's eventfd.
pub(crate) fn hello(vmm: &Vmm, kvm: &Kvm) -> String {
    let doorbells: Vec<String> = DOORBELLS
        .iter()
        .zip(vmm.exported())
        .map(|(d, fd)| {
            format!(
                "{{\"name\":\"{}\",\"gpa\":{},\"width\":{},\"value\":\"{}\",\"datamatch\":{},\"bar_offset\":{},\"fd\":{}}}",
                d.name,
                d.gpa(DOORBELL_GPA),
                d.width,
                d.value,
                d.datamatch,
                d.bar_offset(),
                fd.as_raw_fd()
            )
        })
        .collect();
    format!(
        "{{\"pid\":{},\"mode\":\"{}\",\"kvm\":{{\"api\":{},\"ioeventfd\":{}}},\"bar_gpa\":{},\"doorbell_gpa\":{},\"doorbells\":[{}]}}",
        std::process::id(),
        vmm.mode().name(),
        kvm.api_version().unwrap_or(0),
        kvm.check_extension(KVM_CAP_IOEVENTFD).unwrap_or(0),
        BAR_GPA,
        DOORBELL_GPA,
        doorbells.join(",")
    )
}
