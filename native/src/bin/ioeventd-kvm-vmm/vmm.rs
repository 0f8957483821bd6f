//! The VMM: a VM with guest RAM and the BAR window, one vCPU, the doorbell eventfds; switching
//! the doorbell path, and starting and collecting runs (the vCPU in its own thread).

use crate::doorbell_path::{Bare, BareCounters, Mode};
use crate::guest_layout::{
    doorbell_of_width, BAR_GPA, BAR_WINDOW, DOORBELLS, DOORBELL_GPA, PROGRESS, RAM_GPA, RAM_SIZE,
    STOP,
};
use crate::guest_program::{assemble, Program};
use crate::report::result_json;
use crate::vcpu_run::{Cpu, RunResult};
use ioeventd_native::sys::kvm::{GuestMemory, Kvm, Vm, KVM_CAP_IOEVENTFD};
use ioeventd_native::sys::{self, Errno};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A started run: the vCPU thread, what it runs, and the bare counters before it.
struct Running {
    thread: JoinHandle<(Cpu, RunResult)>,
    program: Program,
    width: u32,
    count: u32,
    mode: Mode,
    before: (u64, u64),
}

/// The VMM: everything a run needs, between runs (the vCPU is lent to the run's thread).
pub(crate) struct Vmm {
    vm: Vm,
    cpu: Option<Cpu>,
    running: Option<Running>,
    ram: Arc<GuestMemory>,
    bar: Arc<GuestMemory>,
    /// The eventfds printed at start (armed by the agent in `ioeventd` mode).
    exported: Vec<OwnedFd>,
    /// The bare consumer's own eventfds.
    private: Vec<OwnedFd>,
    mode: Mode,
    bare: Option<Bare>,
    bare_counters: Arc<BareCounters>,
}

impl Vmm {
    fn kvm_fds(&self, mode: Mode) -> Option<&[OwnedFd]> {
        match mode {
            Mode::Ioeventd => Some(&self.exported),
            Mode::Bare | Mode::BareSpin => Some(&self.private),
            Mode::Exit | Mode::Ram => None,
        }
    }

    fn assign(&self, mode: Mode, assign: bool) -> Result<(), Errno> {
        if let Some(fds) = self.kvm_fds(mode) {
            for (d, fd) in DOORBELLS.iter().zip(fds) {
                let dm = d.datamatch.then_some(d.value);
                let gpa = d.gpa(DOORBELL_GPA);
                if assign {
                    self.vm.ioeventfd(gpa, d.width, fd.as_raw_fd(), dm)?;
                } else {
                    self.vm
                        .ioeventfd_deassign(gpa, d.width, fd.as_raw_fd(), dm)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn set_mode(&mut self, mode: Mode) -> Result<(), String> {
        if self.running.is_some() {
            return Err("a run is in progress".into());
        }
        self.assign(self.mode, false)
            .map_err(|e| format!("deassign: {e}"))?;
        if let Some(b) = self.bare.take() {
            b.stop();
        }
        self.assign(mode, true)
            .map_err(|e| format!("KVM_IOEVENTFD: {e}"))?;
        if matches!(mode, Mode::Bare | Mode::BareSpin) {
            let b = Bare::start(
                &self.private,
                self.bar.clone(),
                mode == Mode::BareSpin,
                self.bare_counters.clone(),
            )
            .map_err(|e| format!("bare consumer: {e}"))?;
            self.bare = Some(b);
        }
        self.mode = mode;
        Ok(())
    }

    fn bare_snapshot(&self) -> (u64, u64) {
        (
            self.bare_counters.writes.load(Ordering::Relaxed),
            self.bare_counters.signals.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn start(&mut self, program: Program, width: u32, count: u32) -> Result<(), String> {
        if self.running.is_some() {
            return Err("a run is in progress".into());
        }
        if program == Program::Latency || program == Program::Stores {
            doorbell_of_width(width).ok_or("width must be 1, 2, 4 or 8")?;
        }
        let code = assemble(program, width, count)?;
        let mut cpu = self.cpu.take().ok_or("no vCPU")?;
        let mode = self.mode;
        let before = self.bare_snapshot();
        let thread = std::thread::Builder::new()
            .name("vcpu0".into())
            .spawn(move || {
                let r = cpu.run(mode, program, &code);
                (cpu, r)
            })
            .map_err(|e| format!("vCPU thread: {e}"))?;
        self.running = Some(Running {
            thread,
            program,
            width,
            count,
            mode,
            before,
        });
        Ok(())
    }

    pub(crate) fn wait(&mut self) -> Result<String, String> {
        let Running {
            thread,
            program,
            width,
            count,
            mode,
            before,
        } = self.running.take().ok_or("nothing started")?;
        let (cpu, r) = thread.join().map_err(|_| "the vCPU thread panicked")?;
        self.cpu = Some(cpu);
        // Let the bare consumer's last write land before reading its counters.
        if self.bare.is_some() {
            let deadline = sys::monotonic_ns() + 100_000_000;
            let mut last = self.bare_snapshot();
            while sys::monotonic_ns() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(2));
                let now = self.bare_snapshot();
                if now == last {
                    break;
                }
                last = now;
            }
        }
        let after = self.bare_snapshot();
        let bare = (after.0 - before.0, after.1 - before.1);
        Ok(result_json(program, width, count, mode, &r, bare))
    }

    /// Doorbells the guest has seen land so far in this run (its progress word).
    pub(crate) fn progress(&self) -> Result<u64, String> {
        self.ram
            .load(PROGRESS as usize, 4)
            .map_err(|e| e.to_string())
    }

    /// Asks the guest to leave its loop at the next iteration (its stop word).
    pub(crate) fn request_stop(&self) -> Result<(), String> {
        self.ram
            .store(STOP as usize, 4, 1)
            .map_err(|e| e.to_string())
    }

    /// The doorbell path runs take now.
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// The eventfds printed at start, one per doorbell, in [`DOORBELLS`]' order.
    pub(crate) fn exported(&self) -> &[OwnedFd] {
        &self.exported
    }

    /// Stops the bare consumer's thread, if one runs.
    pub(crate) fn stop_bare_consumer(&mut self) {
        if let Some(b) = self.bare.take() {
            b.stop();
        }
    }
}

/// Opens KVM, builds the VM (RAM, the BAR window, one vCPU, the eventfds) in `mode`.
pub(crate) fn setup(bar_path: &str, mode: Mode) -> Result<(Kvm, Vmm), String> {
    let kvm = Kvm::open().map_err(|e| format!("/dev/kvm: {e}"))?;
    if kvm.check_extension(KVM_CAP_IOEVENTFD).unwrap_or(0) <= 0 {
        return Err("KVM_CAP_IOEVENTFD missing".into());
    }
    let mut vm = kvm.create_vm().map_err(|e| format!("KVM_CREATE_VM: {e}"))?;
    let ram = Arc::new(GuestMemory::anonymous(RAM_SIZE).map_err(|e| format!("guest RAM: {e}"))?);
    vm.set_memory(0, RAM_GPA, ram.clone())
        .map_err(|e| format!("RAM slot: {e}"))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(bar_path)
        .map_err(|e| format!("{bar_path}: {e}"))?;
    let bar = Arc::new(
        GuestMemory::file(file.as_raw_fd(), BAR_WINDOW).map_err(|e| format!("BAR mmap: {e}"))?,
    );
    drop(file); // the mapping keeps the file
    vm.set_memory(1, BAR_GPA, bar.clone())
        .map_err(|e| format!("BAR slot: {e}"))?;
    let vcpu = vm
        .create_vcpu(0)
        .map_err(|e| format!("KVM_CREATE_VCPU: {e}"))?;
    // Eventfds as QEMU makes them: non-blocking, close-on-exec.
    let efd = || sys::eventfd(0, sys::EFD_NONBLOCK | sys::EFD_CLOEXEC).map_err(|e| e.to_string());
    let exported = (0..DOORBELLS.len())
        .map(|_| efd())
        .collect::<Result<Vec<_>, _>>()?;
    let private = (0..DOORBELLS.len())
        .map(|_| efd())
        .collect::<Result<Vec<_>, _>>()?;
    let mut vmm = Vmm {
        vm,
        cpu: Some(Cpu {
            vcpu,
            ram: ram.clone(),
            bar: bar.clone(),
        }),
        running: None,
        ram,
        bar,
        exported,
        private,
        mode: Mode::Ram,
        bare: None,
        bare_counters: Arc::default(),
    };
    vmm.set_mode(mode)?;
    Ok((kvm, vmm))
}
