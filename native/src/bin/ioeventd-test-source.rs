//! ioeventd-test-source: a process that owns eventfds and signals them on command, for the
//! service tests and benchmarks.
//!
//! Usage: `ioeventd-test-source <count>`. Prints `{"pid":P,"fds":[...]}` on one line, then
//! answers each stdin line with one line `ok ...` or `err ...`. Commands:
//! `signal <i> [n]`, `signal-all [n]`, `stress <first> <last> <signals_per_fd> <threads>`,
//! `storm-start <first> <last> <threads>`, `storm-stop`, `throughput <first> <last>
//! <threads> <seconds>`, `replace <i>`, `pipe <i>`, `close <i>`, `value <i>`, `flags <i>`,
//! `latency <i> <bar_path> <offset> <width> <data> <count>`, `doorbells-start <i>
//! <bar_path> <offset> <width> <data> <interval_us>`, `doorbells-stop`, `exit`. EOF exits
//! too.

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
use ioeventd_native::sys::{self, Errno};
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct Storm {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

/// A paced doorbell stream running on its own thread (`doorbells-start`).
struct Doorbells {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<common::LatencySummary>,
}

struct Source {
    fds: Vec<RawFd>,
    doorbells: Option<Doorbells>,
    /// Write ends of pipes put in place by `pipe`, kept open.
    pipe_writers: Vec<OwnedFd>,
    storm: Option<Storm>,
}

fn parse_u64(s: Option<&&str>) -> Result<u64, String> {
    let s = s.ok_or("missing argument")?;
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("bad number {s:?}"))
}

fn signal_n(fd: RawFd, n: u64) -> Result<u64, Errno> {
    for _ in 0..n {
        sys::write_u64(fd, 1)?;
    }
    Ok(n)
}

/// Signals `fds` round-robin from `threads` threads until `stop` or `deadline`, or, with
/// `rounds`, for that many rounds split over the threads. Returns the signals sent.
fn run_signallers(
    fds: &[RawFd],
    threads: u64,
    rounds: Option<u64>,
    deadline: Option<Instant>,
    stop: Arc<AtomicBool>,
) -> Vec<JoinHandle<u64>> {
    let threads = threads.max(1);
    (0..threads)
        .map(|t| {
            let fds = fds.to_vec();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut sent = 0u64;
                let mut round = t;
                let mut k = (t as usize) % fds.len().max(1);
                loop {
                    if let Some(r) = rounds {
                        if round >= r {
                            break;
                        }
                        for &fd in &fds {
                            if sys::write_u64(fd, 1).is_ok() {
                                sent += 1;
                            }
                        }
                        round += threads;
                        continue;
                    }
                    if sent.is_multiple_of(256) {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            break;
                        }
                    }
                    if fds.is_empty() {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    if sys::write_u64(fds[k], 1).is_ok() {
                        sent += 1;
                    } else if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    k = (k + 1) % fds.len();
                }
                sent
            })
        })
        .collect()
}

fn join_sum(threads: Vec<JoinHandle<u64>>) -> u64 {
    threads.into_iter().map(|t| t.join().unwrap_or(0)).sum()
}

impl Source {
    fn fd(&self, arg: Option<&&str>) -> Result<(usize, RawFd), String> {
        let i = parse_u64(arg)? as usize;
        self.fds
            .get(i)
            .map(|&fd| (i, fd))
            .ok_or_else(|| format!("no eventfd index {i}"))
    }

    fn range(&self, first: Option<&&str>, last: Option<&&str>) -> Result<Vec<RawFd>, String> {
        let (a, _) = self.fd(first)?;
        let (b, _) = self.fd(last)?;
        if a > b {
            return Err("first > last".into());
        }
        Ok(self.fds[a..=b].to_vec())
    }

    fn command(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(cmd) = words.first() else {
            return Err("empty command".into());
        };
        let arg = |i: usize| words.get(i);
        let e = |e: Errno| e.to_string();
        match *cmd {
            "signal" => {
                let (_, fd) = self.fd(arg(1))?;
                let n = if words.len() > 2 {
                    parse_u64(arg(2))?
                } else {
                    1
                };
                Ok(signal_n(fd, n).map_err(e)?.to_string())
            }
            "signal-all" => {
                let n = if words.len() > 1 {
                    parse_u64(arg(1))?
                } else {
                    1
                };
                let mut total = 0;
                for _ in 0..n {
                    for &fd in &self.fds {
                        total += signal_n(fd, 1).map_err(e)?;
                    }
                }
                Ok(total.to_string())
            }
            "stress" => {
                let fds = self.range(arg(1), arg(2))?;
                let per_fd = parse_u64(arg(3))?;
                let threads = parse_u64(arg(4))?;
                let stop = Arc::new(AtomicBool::new(false));
                Ok(join_sum(run_signallers(&fds, threads, Some(per_fd), None, stop)).to_string())
            }
            "throughput" => {
                let fds = self.range(arg(1), arg(2))?;
                let threads = parse_u64(arg(3))?;
                let secs: f64 = arg(4)
                    .ok_or("missing seconds")?
                    .parse()
                    .map_err(|_| "bad seconds")?;
                let deadline = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
                let stop = Arc::new(AtomicBool::new(false));
                Ok(join_sum(run_signallers(&fds, threads, None, Some(deadline), stop)).to_string())
            }
            "storm-start" => {
                if self.storm.is_some() {
                    return Err("storm already running".into());
                }
                let fds = self.range(arg(1), arg(2))?;
                let threads = parse_u64(arg(3))?;
                let stop = Arc::new(AtomicBool::new(false));
                let threads = run_signallers(&fds, threads, None, None, stop.clone());
                self.storm = Some(Storm { stop, threads });
                Ok(String::new())
            }
            "storm-stop" => {
                let storm = self.storm.take().ok_or("no storm running")?;
                storm.stop.store(true, Ordering::Relaxed);
                Ok(join_sum(storm.threads).to_string())
            }
            "replace" => {
                let (_, fd) = self.fd(arg(1))?;
                let new = sys::eventfd(0, sys::EFD_CLOEXEC).map_err(e)?;
                // Created before the old one is dropped: the two eventfds differ.
                sys::dup2(new.as_raw_fd(), fd).map_err(e)?;
                drop(new);
                Ok(fd.to_string())
            }
            "pipe" => {
                let (_, fd) = self.fd(arg(1))?;
                let (r, w) = sys::pipe().map_err(e)?;
                sys::dup2(r.as_raw_fd(), fd).map_err(e)?;
                drop(r);
                self.pipe_writers.push(w);
                Ok(fd.to_string())
            }
            "close" => {
                let (_, fd) = self.fd(arg(1))?;
                sys::close_raw(fd).map_err(e)?;
                Ok(fd.to_string())
            }
            "value" => {
                let (_, fd) = self.fd(arg(1))?;
                // preadv2(RWF_NOWAIT): never blocks, and the file's flags stay as they are.
                match sys::read_counter(fd) {
                    Ok(v) => Ok(v.to_string()),
                    Err(Errno::EAGAIN) => Ok("0".into()),
                    Err(x) => Err(e(x)),
                }
            }
            "flags" => {
                let (_, fd) = self.fd(arg(1))?;
                Ok(sys::status_flags(fd).map_err(e)?.to_string())
            }
            "latency" => {
                let (_, fd) = self.fd(arg(1))?;
                let path = arg(2).ok_or("missing bar_path")?;
                let offset = parse_u64(arg(3))?;
                let width = u32::try_from(parse_u64(arg(4))?).map_err(|_| "bad width")?;
                let data = parse_u64(arg(5))?;
                let count = parse_u64(arg(6))?;
                let map = Mapping::open(Path::new(path)).map_err(|x| e(x.into()))?;
                let cell = MmioCell::new(map, offset, width).map_err(|x| e(x.into()))?;
                Ok(common::measure_latency(&cell, fd, data, count).to_json())
            }
            "doorbells-start" => {
                if self.doorbells.is_some() {
                    return Err("a doorbell stream is already running".into());
                }
                let (_, fd) = self.fd(arg(1))?;
                let path = arg(2).ok_or("missing bar_path")?;
                let offset = parse_u64(arg(3))?;
                let width = u32::try_from(parse_u64(arg(4))?).map_err(|_| "bad width")?;
                let data = parse_u64(arg(5))?;
                let interval = Duration::from_micros(parse_u64(arg(6))?);
                let map = Mapping::open(Path::new(path)).map_err(|x| e(x.into()))?;
                let cell = MmioCell::new(map, offset, width).map_err(|x| e(x.into()))?;
                let stop = Arc::new(AtomicBool::new(false));
                let s = stop.clone();
                let thread = std::thread::spawn(move || {
                    common::doorbell_stream(&cell, fd, data, interval, &s)
                });
                self.doorbells = Some(Doorbells { stop, thread });
                Ok(String::new())
            }
            "doorbells-stop" => {
                let d = self.doorbells.take().ok_or("no doorbell stream running")?;
                d.stop.store(true, Ordering::Relaxed);
                let summary = d.thread.join().map_err(|_| "the stream panicked")?;
                Ok(summary.to_json())
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }
}

fn main() {
    let count: usize = match std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        Some(c) => c,
        None => {
            eprintln!("usage: ioeventd-test-source <count> [nonblock]");
            std::process::exit(2);
        }
    };
    // "nonblock": eventfds as QEMU makes them (EFD_NONBLOCK); default blocking.
    let flags = if std::env::args().nth(2).as_deref() == Some("nonblock") {
        sys::EFD_CLOEXEC | sys::EFD_NONBLOCK
    } else {
        sys::EFD_CLOEXEC
    };
    let mut fds = Vec::with_capacity(count);
    for _ in 0..count {
        match sys::eventfd(0, flags) {
            Ok(fd) => fds.push(fd.into_raw_fd()),
            Err(e) => {
                eprintln!("eventfd: {e}");
                std::process::exit(1);
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let list: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
    let _ = writeln!(
        out,
        "{{\"pid\":{},\"fds\":[{}]}}",
        std::process::id(),
        list.join(",")
    );
    let _ = out.flush();
    let mut src = Source {
        fds,
        doorbells: None,
        pipe_writers: Vec::new(),
        storm: None,
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "exit" {
            let _ = writeln!(out, "ok");
            let _ = out.flush();
            std::process::exit(0);
        }
        let reply = match src.command(line) {
            Ok(s) if s.is_empty() => "ok".to_string(),
            Ok(s) => format!("ok {s}"),
            Err(e) => format!("err {e}"),
        };
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
    }
}
