//! The vCPU side of a run: loading the program and the real-mode segments, `KVM_RUN` until
//! the guest halts (performing the doorbell writes itself in `exit` mode), and what the
//! guest left in its control words and sample ring.

use crate::doorbell_path::Mode;
use crate::guest_layout::{
    BAR_GPA, CODE_GPA, DOORBELLS, DOORBELL_GPA, PROGRESS, QWORD, RAM_DOORBELL_GPA, REG_BASE,
    SAMPLES_GPA, SAMPLE_SLOTS, TSC_END, TSC_START,
};
use crate::guest_program::Program;
use ioeventd_native::sys::kvm::{GuestMemory, Regs, Vcpu, VcpuExit};
use ioeventd_native::sys::{self, Errno};
use std::sync::Arc;

/// What one run reports.
#[derive(Default)]
pub(crate) struct RunResult {
    pub(crate) ns: u64,
    pub(crate) exits: u64,
    pub(crate) mmio_exits: u64,
    pub(crate) unmatched_mmio: u64,
    pub(crate) exit_writes: u64,
    pub(crate) progress: u64,
    pub(crate) tsc_start: u64,
    pub(crate) tsc_end: u64,
    pub(crate) samples: Vec<u32>,
    pub(crate) error: Option<String>,
}

/// The vCPU side: owned by whichever thread runs the guest.
pub(crate) struct Cpu {
    pub(crate) vcpu: Vcpu,
    pub(crate) ram: Arc<GuestMemory>,
    pub(crate) bar: Arc<GuestMemory>,
}

impl Cpu {
    fn setup(&self, mode: Mode, code: &[u8]) -> Result<(), Errno> {
        self.ram.write_bytes(CODE_GPA as usize, code)?;
        for off in (0x800..0x900).step_by(8) {
            self.ram.store(off, 8, 0)?;
        }
        self.ram.store(QWORD as usize, 8, DOORBELLS[3].value)?;
        let mut s = self.vcpu.sregs()?;
        let seg = |seg: &mut ioeventd_native::sys::kvm::Segment, base: u64| {
            seg.base = base;
            seg.selector = (base >> 4) as u16;
            seg.limit = 0xffff;
        };
        seg(&mut s.cs, 0);
        seg(&mut s.ss, 0);
        seg(&mut s.fs, 0);
        seg(&mut s.gs, SAMPLES_GPA);
        if mode == Mode::Ram {
            // DS:d and ES:reg_disp(d) are the same RAM byte: the store is its own "write".
            seg(&mut s.ds, RAM_DOORBELL_GPA);
            seg(&mut s.es, RAM_DOORBELL_GPA - REG_BASE - 0x10);
        } else {
            seg(&mut s.ds, DOORBELL_GPA);
            seg(&mut s.es, BAR_GPA - 0x10);
        }
        // MMX (the 8-byte store) needs CR0.EM and CR0.TS clear.
        s.cr0 &= !(0b1100);
        self.vcpu.set_sregs(&s)?;
        self.vcpu.set_regs(&Regs {
            rip: CODE_GPA,
            rflags: 2,
            rsp: 0xfff0,
            ..Regs::default()
        })?;
        Ok(())
    }

    /// Runs the guest until `hlt`. In `exit` mode every doorbell store is performed here.
    pub(crate) fn run(&mut self, mode: Mode, program: Program, code: &[u8]) -> RunResult {
        let mut r = RunResult::default();
        if let Err(e) = self.setup(mode, code) {
            r.error = Some(format!("setup: {e}"));
            return r;
        }
        let t0 = sys::monotonic_ns();
        loop {
            let exit = match self.vcpu.run() {
                Ok(e) => e,
                Err(e) => {
                    r.error = Some(format!("KVM_RUN: {e}"));
                    break;
                }
            };
            r.exits += 1;
            match exit {
                VcpuExit::Hlt => break,
                VcpuExit::Mmio {
                    addr,
                    len,
                    data,
                    is_write,
                } => {
                    r.mmio_exits += 1;
                    if !is_write {
                        self.vcpu.set_mmio_read(0);
                        r.unmatched_mmio += 1;
                        continue;
                    }
                    let hit = DOORBELLS.iter().find(|d| {
                        d.gpa(DOORBELL_GPA) == addr
                            && d.width == len
                            && (!d.datamatch || d.value == data)
                    });
                    match hit {
                        Some(d) if mode == Mode::Exit => {
                            let _ =
                                self.bar
                                    .store(d.bar_offset() as usize, d.width as usize, d.value);
                            r.exit_writes += 1;
                        }
                        _ => r.unmatched_mmio += 1,
                    }
                }
                other => {
                    r.error = Some(format!("unexpected exit {other:?}"));
                    break;
                }
            }
        }
        r.ns = sys::monotonic_ns() - t0;
        let ram = &self.ram;
        let word = |at: u16, w: usize| ram.load(at as usize, w).unwrap_or(0);
        r.progress = word(PROGRESS, 4);
        r.tsc_start = word(TSC_START, 8);
        r.tsc_end = word(TSC_END, 8);
        let samples = if program == Program::Latency {
            r.progress as usize
        } else {
            0
        };
        let kept = samples.min(SAMPLE_SLOTS);
        r.samples = (samples - kept..samples)
            .map(|i| {
                ram.load(SAMPLES_GPA as usize + 4 * (i % SAMPLE_SLOTS), 4)
                    .unwrap_or(0) as u32
            })
            .collect();
        r
    }
}
