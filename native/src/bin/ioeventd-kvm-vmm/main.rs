//! ioeventd-kvm-vmm: a minimal VMM whose real-mode guest rings doorbells, for the KVM tests
//! and the "guest doorbells" benchmark (issue #15).
//!
//! Usage: `ioeventd-kvm-vmm --bar <resourceN path> [--mode M]`. It creates a VM with one
//! vCPU, maps the first 64 KiB of the BAR file into the guest at 0x100000 (a memory slot:
//! the guest reads what the agent writes there), creates one eventfd per doorbell, prints
//! one JSON line `{"pid":P,"kvm":{..},"doorbells":[{"name","gpa","width","value",
//! "datamatch","bar_offset","fd"},..]}` and then answers each stdin line with one line
//! `ok ...` or `err ...`:
//!
//! | command                          | reply                                                 |
//! | -------------------------------- | ----------------------------------------------------- |
//! | `mode <M>`                       | `ok`: switches the doorbell path (below)              |
//! | `run <program> <width> <count>`  | `ok {result JSON}` once the guest halted              |
//! | `start <program> <width> <count>`| `ok`: the same, the vCPU in its own thread            |
//! | `progress`                       | `ok <n>`: doorbells the guest has seen land so far    |
//! | `stop`                           | `ok`: the guest leaves its loop at the next iteration |
//! | `wait`                           | `ok {result JSON}` of the started run                 |
//! | `exit`                           | `ok`, then exit 0 (EOF exits too)                     |
//!
//! Modes (the guest code is the same in each; only the doorbell path differs):
//! - `exit`: no KVM ioeventfd; every doorbell store is a `KVM_EXIT_MMIO` and this process
//!   performs the write into the BAR mapping itself (the path ioeventfds replace).
//! - `ioeventd` (default): a `KVM_IOEVENTFD` per doorbell on the eventfds printed at start;
//!   whoever arms them (the agent, through CreateIoeventfd) performs the writes.
//! - `bare` / `bare-spin`: a `KVM_IOEVENTFD` per doorbell on private eventfds, consumed by a
//!   minimal epoll thread of this process (blocking, or `epoll_wait(0)` spinning) that does
//!   the write: the user-space limit.
//! - `ram`: the doorbell segment points at guest RAM: the guest's own floor.
//!
//! Programs: `stores` (count stores of `width` bytes to that width's doorbell, then the
//! final doorbell), `latency` (count times: clear the register in the BAR slot, `rdtsc`,
//! ring, poll the BAR slot until the value is there, `rdtsc`; the last 16384 differences are
//! kept; then the final doorbell, waited for), `datamatch` (count times: ring value A, wait
//! for A, ring value B, wait for B, at one address; then the final doorbell, waited for;
//! `stop` ends it early). Width 8 is a true 8-byte store: `movq [m64], mm0` (MMX), which
//! KVM forwards as one 8-byte access; 16-bit real mode has no 8-byte integer store.

// Casts here are intended: x86_64 only (usize = u64); guest values are truncated to their
// declared width on purpose.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

mod doorbell_path;
mod guest_layout;
mod guest_program;
mod protocol;
mod report;
mod vcpu_run;
mod vmm;

use doorbell_path::Mode;

/// `--bar <path>` and `--mode <M>`; exits 2 with a message on anything else.
fn parse_args() -> (String, Mode) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut bar = None;
    let mut mode = Mode::Ioeventd;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--bar" => bar = args.get(i + 1).cloned(),
            "--mode" => match args.get(i + 1).map(|m| Mode::parse(m)) {
                Some(Ok(m)) => mode = m,
                Some(Err(e)) => {
                    eprintln!("ioeventd-kvm-vmm: {e}");
                    std::process::exit(2);
                }
                None => {
                    eprintln!("ioeventd-kvm-vmm: --mode needs a value");
                    std::process::exit(2);
                }
            },
            other => {
                eprintln!("ioeventd-kvm-vmm: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let Some(bar) = bar else {
        eprintln!(
            "usage: ioeventd-kvm-vmm --bar <resourceN> [--mode exit|ioeventd|bare|bare-spin|ram]"
        );
        std::process::exit(2);
    };
    (bar, mode)
}

fn main() {
    let (bar, mode) = parse_args();
    let (kvm, mut vmm) = match vmm::setup(&bar, mode) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ioeventd-kvm-vmm: {e}");
            std::process::exit(1);
        }
    };
    protocol::serve(&kvm, &mut vmm);
    vmm.stop_bare_consumer();
}
