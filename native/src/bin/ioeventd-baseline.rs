//! ioeventd-baseline: the benchmark baseline, the minimal eventfd → epoll → store loop
//! (one receiver thread of this process, storing into an mmapped temp file).
//!
//! `ioeventd-baseline latency --count N --mode block|busy` prints
//! `{"count":..,"p50_ns":..,"p99_ns":..,"p999_ns":..,"mean_ns":..,"timeouts":..}`.
//! `ioeventd-baseline throughput --regs R --threads T --seconds S --mode block|busy` prints
//! `{"writes_per_sec":..,"signals_per_sec":..,...}` (writes = stores by the receiver).

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

mod common;

use ioeventd_native::bar::Mapping;
use ioeventd_native::mmio::MmioCell;
use ioeventd_native::sys::{self, EpollEvent, Errno};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN_STOP: u64 = u64::MAX;
const DATA: u64 = 0x1234_5678;

struct Receiver {
    stop: OwnedFd,
    thread: std::thread::JoinHandle<u64>,
}

impl Receiver {
    /// Starts the receiver thread: `efds[i]` signalled ⇒ `cells[i].store(DATA)`.
    fn start(efds: Vec<OwnedFd>, cells: Vec<MmioCell>, busy: bool) -> Result<Receiver, Errno> {
        let ep = sys::epoll_create()?;
        let stop = sys::eventfd(0, sys::EFD_NONBLOCK | sys::EFD_CLOEXEC)?;
        sys::epoll_add(ep.as_raw_fd(), stop.as_raw_fd(), sys::EPOLLIN, TOKEN_STOP)?;
        for (i, fd) in efds.iter().enumerate() {
            sys::set_nonblocking(fd.as_raw_fd())?;
            sys::epoll_add(ep.as_raw_fd(), fd.as_raw_fd(), sys::EPOLLIN, i as u64)?;
        }
        let timeout = if busy { 0 } else { -1 };
        let thread = std::thread::spawn(move || {
            let mut events = [EpollEvent::default(); 64];
            let mut writes = 0u64;
            loop {
                let n = match sys::epoll_wait(ep.as_raw_fd(), &mut events, timeout) {
                    Ok(n) => n,
                    Err(Errno::EINTR) => continue,
                    Err(_) => return writes,
                };
                for ev in &events[..n] {
                    let t = ev.token();
                    if t == TOKEN_STOP {
                        return writes;
                    }
                    let i = t as usize;
                    if sys::read_u64(efds[i].as_raw_fd()).is_ok() {
                        cells[i].store(DATA);
                        writes += 1;
                    }
                }
            }
        });
        Ok(Receiver { stop, thread })
    }

    fn stop(self) -> u64 {
        let _ = sys::write_u64(self.stop.as_raw_fd(), 1);
        self.thread.join().unwrap_or(0)
    }
}

struct TempBar {
    path: PathBuf,
    map: Arc<Mapping>,
}

impl TempBar {
    fn new(len: usize) -> Result<TempBar, String> {
        let path =
            std::env::temp_dir().join(format!("ioeventd-baseline-{}-{}", std::process::id(), len));
        std::fs::write(&path, vec![0u8; len.max(4096)]).map_err(|e| e.to_string())?;
        let map = Mapping::open(&path).map_err(|e| e.to_string())?;
        Ok(TempBar { path, map })
    }
}

impl Drop for TempBar {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn parse_flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut m = HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = a
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {a:?}"))?;
        let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        m.insert(key.to_string(), v.clone());
    }
    Ok(m)
}

fn flag<T: std::str::FromStr>(
    m: &HashMap<String, String>,
    k: &str,
    default: T,
) -> Result<T, String> {
    match m.get(k) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("bad --{k} {v:?}")),
    }
}

fn busy(m: &HashMap<String, String>) -> Result<bool, String> {
    match m.get("mode").map(String::as_str) {
        None | Some("block") => Ok(false),
        Some("busy") => Ok(true),
        Some(o) => Err(format!("bad --mode {o:?} (block|busy)")),
    }
}

fn latency(m: &HashMap<String, String>) -> Result<String, String> {
    let count: u64 = flag(m, "count", 10_000)?;
    let busy = busy(m)?;
    let bar = TempBar::new(4096)?;
    let efd = sys::eventfd(0, sys::EFD_CLOEXEC).map_err(|e| e.to_string())?;
    let theirs = sys::dup(efd.as_raw_fd()).map_err(|e| e.to_string())?;
    let rx_cell = MmioCell::new(bar.map.clone(), 0, 4).map_err(|e| e.to_string())?;
    let my_cell = MmioCell::new(bar.map.clone(), 0, 4).map_err(|e| e.to_string())?;
    let rx = Receiver::start(vec![theirs], vec![rx_cell], busy).map_err(|e| e.to_string())?;
    let summary = common::measure_latency(&my_cell, efd.as_raw_fd(), DATA, count);
    rx.stop();
    Ok(summary.to_json())
}

fn throughput(m: &HashMap<String, String>) -> Result<String, String> {
    let regs: usize = flag(m, "regs", 64)?;
    let threads: usize = flag(m, "threads", 1)?;
    let seconds: f64 = flag(m, "seconds", 2.0)?;
    let busy = busy(m)?;
    if regs == 0 || threads == 0 {
        return Err("--regs and --threads must be > 0".into());
    }
    let bar = TempBar::new(regs * 8)?;
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    let mut cells = Vec::new();
    for i in 0..regs {
        let efd = sys::eventfd(0, sys::EFD_CLOEXEC).map_err(|e| e.to_string())?;
        theirs.push(sys::dup(efd.as_raw_fd()).map_err(|e| e.to_string())?);
        mine.push(efd);
        cells.push(MmioCell::new(bar.map.clone(), (i * 8) as u64, 8).map_err(|e| e.to_string())?);
    }
    let rx = Receiver::start(theirs, cells, busy).map_err(|e| e.to_string())?;
    let raw: Arc<Vec<i32>> = Arc::new(mine.iter().map(|f| f.as_raw_fd()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let signallers: Vec<_> = (0..threads)
        .map(|t| {
            let raw = raw.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut k = t % raw.len();
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        if sys::write_u64(raw[k], 1).is_ok() {
                            sent += 1;
                        }
                        k += 1;
                        if k == raw.len() {
                            k = 0;
                        }
                    }
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds.max(0.0)));
    stop.store(true, Ordering::Relaxed);
    let signals: u64 = signallers.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let elapsed = t0.elapsed().as_secs_f64();
    let writes = rx.stop();
    drop(mine);
    Ok(format!(
        "{{\"writes_per_sec\":{:.1},\"signals_per_sec\":{:.1},\"writes\":{writes},\"signals\":{signals},\"seconds\":{elapsed:.3},\"regs\":{regs},\"threads\":{threads},\"mode\":\"{}\"}}",
        writes as f64 / elapsed,
        signals as f64 / elapsed,
        if busy { "busy" } else { "block" }
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: ioeventd-baseline latency --count N --mode block|busy\n       \
                 ioeventd-baseline throughput --regs R --threads T --seconds S --mode block|busy";
    let result = match args.first().map(String::as_str) {
        Some("latency") => parse_flags(&args[1..]).and_then(|m| latency(&m)),
        Some("throughput") => parse_flags(&args[1..]).and_then(|m| throughput(&m)),
        _ => Err(usage.to_string()),
    };
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}
