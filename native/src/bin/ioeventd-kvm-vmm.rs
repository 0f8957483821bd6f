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

use ioeventd_native::sys::kvm::{GuestMemory, Kvm, Regs, Vcpu, VcpuExit, Vm, KVM_CAP_IOEVENTFD};
use ioeventd_native::sys::{self, EpollEvent, Errno};
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Guest RAM: code, control words, the latency samples.
const RAM_GPA: u64 = 0;
const RAM_SIZE: usize = 0x20000;
const CODE_GPA: u64 = 0x1000;
/// Control words at these guest-physical addresses (FS base 0).
const PROGRESS: u16 = 0x0800;
const STOP: u16 = 0x0804;
const TSC_START: u16 = 0x0810;
const TSC_END: u16 = 0x0818;
const QWORD: u16 = 0x0820;
/// Latency samples: GS base 0x10000, 64 KiB ring of u32 TSC differences.
const SAMPLES_GPA: u64 = 0x10000;
const SAMPLE_SLOTS: usize = 0x10000 / 4;
/// The doorbell page: outside every memory slot, so a store there is MMIO.
const DOORBELL_GPA: u64 = 0x30000;
/// In `ram` mode the doorbell segment points here instead (inside guest RAM).
const RAM_DOORBELL_GPA: u64 = 0x9000;
/// The BAR window: a memory slot backed by the BAR file's first 64 KiB.
const BAR_GPA: u64 = 0x100000;
const BAR_WINDOW: usize = 0x10000;
/// Doorbell offset `d` in its page ⇔ register `REG_BASE + d` in the BAR.
const REG_BASE: u64 = 0x1000;

/// A doorbell: a guest store of `width` bytes of `value` at `DOORBELL_GPA + offset`, which
/// should become the write of `value` at BAR offset `REG_BASE + offset`.
#[derive(Clone, Copy)]
struct Doorbell {
    name: &'static str,
    offset: u16,
    width: u32,
    value: u64,
    datamatch: bool,
}

impl Doorbell {
    fn gpa(&self, base: u64) -> u64 {
        base + u64::from(self.offset)
    }
    fn bar_offset(&self) -> u64 {
        REG_BASE + u64::from(self.offset)
    }
}

const DOORBELLS: [Doorbell; 7] = [
    Doorbell {
        name: "w1",
        offset: 0x010,
        width: 1,
        value: 0xa5,
        datamatch: false,
    },
    Doorbell {
        name: "w2",
        offset: 0x020,
        width: 2,
        value: 0xbeef,
        datamatch: false,
    },
    Doorbell {
        name: "w4",
        offset: 0x040,
        width: 4,
        value: 0xdead_beef,
        datamatch: false,
    },
    Doorbell {
        name: "w8",
        offset: 0x080,
        width: 8,
        value: 0x0123_4567_89ab_cdef,
        datamatch: false,
    },
    Doorbell {
        name: "dm_a",
        offset: 0x100,
        width: 4,
        value: 0x1111_1111,
        datamatch: true,
    },
    Doorbell {
        name: "dm_b",
        offset: 0x100,
        width: 4,
        value: 0x2222_2222,
        datamatch: true,
    },
    Doorbell {
        name: "final",
        offset: 0x200,
        width: 4,
        value: 0xf1a1_f1a1,
        datamatch: false,
    },
];
const DM_A: usize = 4;
const DM_B: usize = 5;
const FINAL: usize = 6;

fn doorbell_of_width(width: u32) -> Option<usize> {
    DOORBELLS[..4].iter().position(|d| d.width == width)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Exit,
    Ioeventd,
    Bare,
    BareSpin,
    Ram,
}

impl Mode {
    fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "exit" => Mode::Exit,
            "ioeventd" => Mode::Ioeventd,
            "bare" => Mode::Bare,
            "bare-spin" => Mode::BareSpin,
            "ram" => Mode::Ram,
            _ => {
                return Err(format!(
                    "unknown mode {s:?} (exit, ioeventd, bare, bare-spin, ram)"
                ))
            }
        })
    }
    fn name(self) -> &'static str {
        match self {
            Mode::Exit => "exit",
            Mode::Ioeventd => "ioeventd",
            Mode::Bare => "bare",
            Mode::BareSpin => "bare-spin",
            Mode::Ram => "ram",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Program {
    Stores,
    Latency,
    Datamatch,
}

impl Program {
    fn parse(s: &str) -> Result<Program, String> {
        Ok(match s {
            "stores" => Program::Stores,
            "latency" => Program::Latency,
            "datamatch" => Program::Datamatch,
            _ => {
                return Err(format!(
                    "unknown program {s:?} (stores, latency, datamatch)"
                ))
            }
        })
    }
    fn name(self) -> &'static str {
        match self {
            Program::Stores => "stores",
            Program::Latency => "latency",
            Program::Datamatch => "datamatch",
        }
    }
}

/// A tiny 16-bit real-mode assembler: exactly the instructions the programs use.
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
}

const ES: u8 = 0x26;
const FS: u8 = 0x64;
const GS: u8 = 0x65;
const OP32: u8 = 0x66;

impl Asm {
    fn emit(&mut self, bytes: &[u8]) -> &mut Self {
        self.code.extend_from_slice(bytes);
        self
    }
    fn here(&self) -> usize {
        self.code.len()
    }
    fn disp(&mut self, d: u16) -> &mut Self {
        self.emit(&d.to_le_bytes())
    }
    fn imm(&mut self, width: u32, v: u64) -> &mut Self {
        let b = v.to_le_bytes();
        self.emit(&b[..width as usize])
    }
    /// `mov ecx, n`.
    fn mov_ecx(&mut self, n: u32) -> &mut Self {
        self.emit(&[OP32, 0xb9]).imm(4, u64::from(n))
    }
    /// `mov <width> [seg:]disp16, imm` (width 1, 2, 4); `seg` 0 = DS.
    fn store_imm(&mut self, seg: u8, disp: u16, width: u32, v: u64) -> &mut Self {
        if seg != 0 {
            self.emit(&[seg]);
        }
        match width {
            1 => self.emit(&[0xc6, 0x06]).disp(disp).imm(1, v),
            2 => self.emit(&[0xc7, 0x06]).disp(disp).imm(2, v),
            _ => self.emit(&[OP32, 0xc7, 0x06]).disp(disp).imm(4, v),
        }
    }
    /// The doorbell store: `width` bytes of `v` at DS:disp. Width 8: `movq [disp], mm0`, mm0
    /// loaded with `v` from FS:QWORD beforehand (see `load_mm0`).
    fn doorbell(&mut self, disp: u16, width: u32, v: u64) -> &mut Self {
        if width == 8 {
            self.emit(&[0x0f, 0x7f, 0x06]).disp(disp)
        } else {
            self.store_imm(0, disp, width, v)
        }
    }
    /// `movq mm0, fs:[QWORD]`.
    fn load_mm0(&mut self) -> &mut Self {
        self.emit(&[FS, 0x0f, 0x6f, 0x06]).disp(QWORD)
    }
    /// Clears the register (`width` bytes) at ES:disp (width 8 as two dword stores: this is
    /// the register in the BAR slot, not a doorbell).
    fn clear(&mut self, disp: u16, width: u32) -> &mut Self {
        if width == 8 {
            self.store_imm(ES, disp, 4, 0).store_imm(ES, disp + 4, 4, 0)
        } else {
            self.store_imm(ES, disp, width, 0)
        }
    }
    /// `cmp <width> es:[disp], imm` (1, 2, 4).
    fn cmp_es(&mut self, disp: u16, width: u32, v: u64) -> &mut Self {
        match width {
            1 => self.emit(&[ES, 0x80, 0x3e]).disp(disp).imm(1, v),
            2 => self.emit(&[ES, 0x81, 0x3e]).disp(disp).imm(2, v),
            _ => self.emit(&[ES, OP32, 0x81, 0x3e]).disp(disp).imm(4, v),
        }
    }
    /// `jne rel8` back to `target`.
    fn jne_back(&mut self, target: usize) -> &mut Self {
        let rel = target as isize - (self.here() as isize + 2);
        assert!((-128..0).contains(&rel), "short jump out of range");
        self.emit(&[0x75, rel as i8 as u8])
    }
    /// `jne rel16` back to `target`.
    fn jne_near_back(&mut self, target: usize) -> &mut Self {
        let rel = target as isize - (self.here() as isize + 4);
        self.emit(&[0x0f, 0x85]).emit(&(rel as i16).to_le_bytes())
    }
    /// Polls ES:disp until it holds `v` (`width` bytes; 8 as two dword compares).
    fn poll(&mut self, disp: u16, width: u32, v: u64) -> &mut Self {
        let top = self.here();
        if width == 8 {
            self.cmp_es(disp, 4, v & 0xffff_ffff).jne_back(top);
            self.cmp_es(disp + 4, 4, v >> 32).jne_back(top)
        } else {
            self.cmp_es(disp, width, v).jne_back(top)
        }
    }
    /// `rdtsc`.
    fn rdtsc(&mut self) -> &mut Self {
        self.emit(&[0x0f, 0x31])
    }
    /// `mov fs:[at], eax` and `mov fs:[at+4], edx` (after `rdtsc`).
    fn save_tsc(&mut self, at: u16) -> &mut Self {
        self.emit(&[FS, OP32, 0xa3]).disp(at);
        self.emit(&[FS, OP32, 0x89, 0x16]).disp(at + 4)
    }
    /// `inc dword fs:[PROGRESS]`.
    fn progress(&mut self) -> &mut Self {
        self.emit(&[FS, OP32, 0xff, 0x06]).disp(PROGRESS)
    }
    /// `dec ecx; jnz rel16 target`.
    fn loop_back(&mut self, target: usize) -> &mut Self {
        self.emit(&[OP32, 0x49]).jne_near_back(target)
    }
    fn hlt(&mut self) -> &mut Self {
        self.emit(&[0xf4])
    }
}

/// ES offset of a doorbell's register: ES base is `BAR_GPA - 0x10` (selector 0xffff).
fn reg_disp(d: &Doorbell) -> u16 {
    (d.bar_offset() + 0x10) as u16
}

/// The guest code of `program` for `width` and `count`.
fn assemble(program: Program, width: u32, count: u32) -> Result<Vec<u8>, String> {
    let mut a = Asm::default();
    let fin = &DOORBELLS[FINAL];
    a.emit(&[0x31, 0xff]); // xor di, di
    a.rdtsc().save_tsc(TSC_START);
    match program {
        Program::Stores | Program::Latency => {
            let i = doorbell_of_width(width).ok_or("width must be 1, 2, 4 or 8")?;
            let d = &DOORBELLS[i];
            if width == 8 {
                a.load_mm0();
            }
            a.mov_ecx(count);
            let top = a.here();
            if program == Program::Stores {
                a.doorbell(d.offset, width, d.value);
            } else {
                a.clear(reg_disp(d), width);
                a.rdtsc();
                a.emit(&[OP32, 0x89, 0xc3]); // mov ebx, eax
                a.doorbell(d.offset, width, d.value);
                a.poll(reg_disp(d), width, d.value);
                a.rdtsc();
                a.emit(&[OP32, 0x29, 0xd8]); // sub eax, ebx
                a.emit(&[GS, OP32, 0x89, 0x05]); // mov gs:[di], eax
                a.emit(&[0x83, 0xc7, 0x04]); // add di, 4 (wraps: a ring)
                a.progress();
            }
            a.loop_back(top);
            a.doorbell(fin.offset, fin.width, fin.value);
            if program == Program::Latency {
                a.poll(reg_disp(fin), fin.width, fin.value);
            }
        }
        Program::Datamatch => {
            let (da, db) = (&DOORBELLS[DM_A], &DOORBELLS[DM_B]);
            a.mov_ecx(count);
            let top = a.here();
            a.doorbell(da.offset, 4, da.value)
                .poll(reg_disp(da), 4, da.value)
                .progress();
            a.doorbell(db.offset, 4, db.value)
                .poll(reg_disp(db), 4, db.value)
                .progress();
            // cmp dword fs:[STOP], 0 ; jne +6 (over the loop_back's 6 bytes)
            a.emit(&[FS, OP32, 0x83, 0x3e]).disp(STOP).emit(&[0x00]);
            a.emit(&[0x75, 0x06]);
            a.loop_back(top);
            a.doorbell(fin.offset, fin.width, fin.value);
            a.poll(reg_disp(fin), fin.width, fin.value);
        }
    }
    a.rdtsc().save_tsc(TSC_END);
    a.hlt();
    Ok(a.code)
}

/// Counters of the bare consumer.
#[derive(Default)]
struct BareCounters {
    writes: AtomicU64,
    signals: AtomicU64,
}

/// The minimal user-space consumer: eventfd → epoll → one volatile store into the BAR.
struct Bare {
    stop: OwnedFd,
    thread: JoinHandle<()>,
}

const TOKEN_STOP: u64 = u64::MAX;

impl Bare {
    fn start(
        efds: &[OwnedFd],
        bar: Arc<GuestMemory>,
        spin: bool,
        counters: Arc<BareCounters>,
    ) -> Result<Bare, Errno> {
        let ep = sys::epoll_create()?;
        let stop = sys::eventfd(0, sys::EFD_NONBLOCK | sys::EFD_CLOEXEC)?;
        sys::epoll_add(ep.as_raw_fd(), stop.as_raw_fd(), sys::EPOLLIN, TOKEN_STOP)?;
        let fds: Vec<RawFd> = efds.iter().map(AsRawFd::as_raw_fd).collect();
        for (i, &fd) in fds.iter().enumerate() {
            sys::epoll_add(ep.as_raw_fd(), fd, sys::EPOLLIN, i as u64)?;
        }
        let timeout = if spin { 0 } else { -1 };
        let thread = std::thread::Builder::new()
            .name("bare-consumer".into())
            .spawn(move || {
                let mut events = [EpollEvent::default(); 16];
                loop {
                    let n = match sys::epoll_wait(ep.as_raw_fd(), &mut events, timeout) {
                        Ok(n) => n,
                        Err(Errno::EINTR) => continue,
                        Err(_) => return,
                    };
                    for ev in &events[..n] {
                        let t = ev.token();
                        if t == TOKEN_STOP {
                            return;
                        }
                        let d = &DOORBELLS[t as usize];
                        if let Ok(v) = sys::read_counter_nonblocking(fds[t as usize]) {
                            let _ = bar.store(d.bar_offset() as usize, d.width as usize, d.value);
                            counters.writes.fetch_add(1, Ordering::Relaxed);
                            counters.signals.fetch_add(v, Ordering::Relaxed);
                        }
                    }
                }
            })
            .map_err(|e| Errno::from_io(&e))?;
        Ok(Bare { stop, thread })
    }

    fn stop(self) {
        let _ = sys::write_u64(self.stop.as_raw_fd(), 1);
        let _ = self.thread.join();
    }
}

/// What one run reports.
#[derive(Default)]
struct RunResult {
    ns: u64,
    exits: u64,
    mmio_exits: u64,
    unmatched_mmio: u64,
    exit_writes: u64,
    progress: u64,
    tsc_start: u64,
    tsc_end: u64,
    samples: Vec<u32>,
    error: Option<String>,
}

/// The vCPU side: owned by whichever thread runs the guest.
struct Cpu {
    vcpu: Vcpu,
    ram: Arc<GuestMemory>,
    bar: Arc<GuestMemory>,
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
    fn run(&mut self, mode: Mode, program: Program, code: &[u8]) -> RunResult {
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

fn percentile(sorted: &[u32], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    u64::from(sorted[rank - 1])
}

fn result_json(
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

/// A started run: the vCPU thread, what it runs, and the bare counters before it.
struct Running {
    thread: JoinHandle<(Cpu, RunResult)>,
    program: Program,
    width: u32,
    count: u32,
    mode: Mode,
    before: (u64, u64),
}

struct Vmm {
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

    fn set_mode(&mut self, mode: Mode) -> Result<(), String> {
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

    fn start(&mut self, program: Program, width: u32, count: u32) -> Result<(), String> {
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

    fn wait(&mut self) -> Result<String, String> {
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

    fn command(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> Result<u32, String> {
            let s = words.get(i).ok_or("missing argument")?;
            match s.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16),
                None => s.parse(),
            }
            .map_err(|_| format!("bad number {s:?}"))
        };
        match words.first().copied() {
            Some("mode") => {
                let m = Mode::parse(words.get(1).ok_or("missing mode")?)?;
                self.set_mode(m).map(|()| String::new())
            }
            Some(cmd @ ("run" | "start")) => {
                let p = Program::parse(words.get(1).ok_or("missing program")?)?;
                let (width, count) = (num(2)?, num(3)?);
                self.start(p, width, count)?;
                if cmd == "run" {
                    self.wait()
                } else {
                    Ok(String::new())
                }
            }
            Some("wait") => self.wait(),
            Some("progress") => Ok(self
                .ram
                .load(PROGRESS as usize, 4)
                .map_err(|e| e.to_string())?
                .to_string()),
            Some("stop") => {
                self.ram
                    .store(STOP as usize, 4, 1)
                    .map_err(|e| e.to_string())?;
                Ok(String::new())
            }
            Some(other) => Err(format!("unknown command {other:?}")),
            None => Err("empty command".into()),
        }
    }
}

fn hello(vmm: &Vmm, kvm: &Kvm) -> String {
    let doorbells: Vec<String> = DOORBELLS
        .iter()
        .zip(&vmm.exported)
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
        vmm.mode.name(),
        kvm.api_version().unwrap_or(0),
        kvm.check_extension(KVM_CAP_IOEVENTFD).unwrap_or(0),
        BAR_GPA,
        DOORBELL_GPA,
        doorbells.join(",")
    )
}

fn setup(bar_path: &str, mode: Mode) -> Result<(Kvm, Vmm), String> {
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

fn main() {
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
    let (kvm, mut vmm) = match setup(&bar, mode) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ioeventd-kvm-vmm: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", hello(&vmm, &kvm));
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "exit" {
            let _ = writeln!(out, "ok");
            let _ = out.flush();
            break;
        }
        let reply = match vmm.command(&line) {
            Ok(s) if s.is_empty() => "ok".to_string(),
            Ok(s) => format!("ok {s}"),
            Err(e) => format!("err {e}"),
        };
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
    }
    if let Some(b) = vmm.bare.take() {
        b.stop();
    }
}
