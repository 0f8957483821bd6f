//! The engine end to end: real eventfds, real mmapped temp files, real child processes.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
mod common;

use common::{errno, eventually, TempBar, TestSource};
use ioeventd_native::bar::fnv1a;
use ioeventd_native::engine::{Bar, Config, Engine, RegisterRequest, ShardMode};
use ioeventd_native::monitor::{Event, EVENT_SOURCE_EXITED};
use ioeventd_native::source;
use ioeventd_native::stats::{Counters, HISTOGRAM_U64S, WORKER_U64S};
use ioeventd_native::sys::{self, Errno};
use ioeventd_native::worker::PollMode;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn engine(workers: u32, mode: PollMode) -> Engine {
    Engine::open(Config {
        workers,
        canary_period_us: 0,
        poll_mode: mode,
        spin_budget_us: 200,
        ..Config::default()
    })
    .unwrap()
}

fn efd() -> OwnedFd {
    sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK).unwrap()
}

/// A duplicate of `fd` to hand over to `register` (which owns it on success).
fn handover(fd: &OwnedFd) -> i32 {
    sys::dup(fd.as_raw_fd()).unwrap().into_raw_fd()
}

fn req(bar: &TempBar, offset: u64, width: u32, data: u64, efd: i32) -> RegisterRequest<'_> {
    RegisterRequest {
        bar: Bar::File(bar.path()),
        offset,
        width,
        data,
        efd,
        pid: 0,
        pid_start: 0,
    }
}

fn reg_stats(e: &Engine, id: u64) -> Counters {
    e.registration_stats()
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap()
        .counters
}

fn fd_is_open(fd: i32) -> bool {
    sys::fstat(fd).is_ok()
}

/// `raw` (a dup of `orig` handed to the engine) is closed, or its number now belongs to
/// another file (tests run in parallel threads of one process).
fn closed_or_reused(raw: i32, orig: &OwnedFd) -> bool {
    !fd_is_open(raw)
        || source::eventfd_identity(raw, 0) != source::eventfd_identity(orig.as_raw_fd(), 0)
}

#[test]
fn each_width_lands_at_its_offset() {
    let e = engine(2, PollMode::Blocking);
    let bar = TempBar::new("widths", 4096);
    let data = 0x8877_6655_4433_2211u64;
    let mut keep = Vec::new();
    for (width, offset) in [(1u32, 0x101u64), (2, 0x202), (4, 0x304), (8, 0x408)] {
        let fd = efd();
        let id = e
            .register(&req(&bar, offset, width, data, handover(&fd)))
            .unwrap();
        sys::write_u64(fd.as_raw_fd(), 1).unwrap();
        let w = width as usize;
        assert!(
            bar.wait_for(offset, &data.to_le_bytes()[..w]),
            "width {width}"
        );
        assert!(eventually(|| reg_stats(&e, id).triggers == 1));
        keep.push(fd);
    }
    // Nothing else in the file was touched.
    let all = bar.read(0, 4096);
    let touched: usize = all.iter().filter(|&&b| b != 0).count();
    assert_eq!(touched, 1 + 2 + 4 + 8);
    let info = e.info().unwrap();
    assert_eq!(info[0], 2, "workers");
    assert_eq!(info[1], 4, "registrations");
    assert_eq!(info[2], 1, "one BAR mapping for one path");
    assert_eq!(info[6], 1, "alive");
    let stats = e.registration_stats().unwrap();
    assert_eq!(stats.len(), 4);
    assert!(stats.iter().all(|r| r.counters.triggers == 1
        && r.counters.signals == 1
        && r.counters.last_trigger_unix_ns > 1_600_000_000_000_000_000));
}

#[test]
fn validation_errors_leave_the_fd_with_the_caller() {
    let e = engine(1, PollMode::Blocking);
    let bar = TempBar::new("validation", 64);
    let fd = efd();
    let raw = handover(&fd);
    assert_eq!(
        errno(e.register(&req(&bar, 2, 4, 1, raw))),
        Err(Errno::EINVAL),
        "misaligned"
    );
    assert_eq!(
        errno(e.register(&req(&bar, 0, 3, 1, raw))),
        Err(Errno::EINVAL),
        "width"
    );
    assert_eq!(
        errno(e.register(&req(&bar, 64, 8, 1, raw))),
        Err(Errno::ERANGE),
        "end"
    );
    assert_eq!(
        errno(e.register(&req(&bar, 60, 8, 1, raw))),
        Err(Errno::EINVAL),
        "misaligned at end"
    );
    assert_eq!(
        errno(e.register(&req(&bar, 56, 8, 1, -1))),
        Err(Errno::EBADF)
    );
    let missing = TempBar::new("missing", 8);
    let missing_path = missing.path().to_path_buf();
    drop(missing);
    let r = RegisterRequest {
        bar: Bar::File(&missing_path),
        ..req(&bar, 0, 1, 1, raw)
    };
    assert_eq!(errno(e.register(&r)), Err(Errno::ENOENT));
    let empty = TempBar::new("empty", 0);
    assert_eq!(
        errno(e.register(&req(&empty, 0, 1, 1, raw))),
        Err(Errno::EINVAL)
    );
    let (pipe_r, _pipe_w) = sys::pipe().unwrap();
    assert_eq!(
        errno(e.register(&req(&bar, 0, 1, 1, pipe_r.as_raw_fd()))),
        Err(Errno::EMEDIUMTYPE)
    );
    assert!(fd_is_open(raw), "ownership is taken only on success");
    assert_eq!(
        e.info().unwrap()[2],
        0,
        "failed registrations release the BAR"
    );
    let id = e.register(&req(&bar, 56, 8, 1, raw)).unwrap();
    e.unregister(id).unwrap();
    assert!(closed_or_reused(raw, &fd), "the engine closed its eventfd");
    assert_eq!(errno(e.unregister(id)), Err(Errno::ENOENT));
    assert_eq!(
        e.info().unwrap()[2],
        0,
        "unmapped with the last registration"
    );
}

#[test]
fn pending_signal_fires_at_once_and_coalesced_signals_count() {
    let e = engine(1, PollMode::Blocking);
    let bar = TempBar::new("pending", 4096);
    let fd = efd();
    for _ in 0..5 {
        sys::write_u64(fd.as_raw_fd(), 1).unwrap();
    }
    let id = e
        .register(&req(&bar, 8, 4, 0xCAFE_F00D, handover(&fd)))
        .unwrap();
    assert!(bar.wait_for(8, &0xCAFE_F00Du32.to_le_bytes()));
    assert!(
        eventually(|| reg_stats(&e, id).as_words()[..2] == [1, 5]),
        "{:?}",
        reg_stats(&e, id)
    );
    sys::write_u64(fd.as_raw_fd(), 3).unwrap();
    assert!(
        eventually(|| reg_stats(&e, id).as_words()[..2] == [2, 8]),
        "{:?}",
        reg_stats(&e, id)
    );
    let ws = e.worker_stats().unwrap();
    assert_eq!(ws.len(), WORKER_U64S);
    assert!(ws[0] >= 2, "wakeups");
    assert_eq!(ws[1], 2, "service count");
    assert_eq!(ws[3..3 + 20].iter().sum::<u64>(), 2, "service buckets");
}

#[test]
fn busy_and_adaptive_modes_deliver() {
    for mode in [PollMode::Busy, PollMode::Adaptive] {
        let e = engine(1, mode);
        assert_eq!(e.info().unwrap()[4], u64::from(mode.as_u32()));
        let bar = TempBar::new("modes", 4096);
        let fd = efd();
        let id = e
            .register(&req(&bar, 16, 2, 0xBEEF, handover(&fd)))
            .unwrap();
        for round in 1..=20u64 {
            bar.zero(16, 2);
            sys::write_u64(fd.as_raw_fd(), 1).unwrap();
            assert!(bar.wait_for(16, &0xBEEFu16.to_le_bytes()), "{mode:?}");
            assert!(
                eventually(|| reg_stats(&e, id).triggers == round),
                "{mode:?}"
            );
            if round % 5 == 0 {
                // Let the adaptive worker fall back to blocking.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        e.unregister(id).unwrap();
        e.close();
    }
}

#[test]
fn canary_populates_the_dispatch_histogram() {
    let e = Engine::open(Config {
        workers: 2,
        canary_period_us: 500,
        poll_mode: PollMode::Blocking,
        spin_budget_us: 0,
        ..Config::default()
    })
    .unwrap();
    assert!(eventually(|| {
        let ws = e.worker_stats().unwrap();
        (0..2).all(|w| ws[w * WORKER_U64S + 1 + HISTOGRAM_U64S] >= 3)
    }));
    let ws = e.worker_stats().unwrap();
    for w in 0..2 {
        let d = &ws[w * WORKER_U64S + 1 + HISTOGRAM_U64S..(w + 1) * WORKER_U64S];
        assert!(d[1] > 0, "dispatch sum");
        assert!(
            d[2..].iter().sum::<u64>() >= d[0].saturating_sub(1),
            "dispatch buckets"
        );
    }
    assert_eq!(e.info().unwrap()[5], 500);
}

#[test]
fn source_exit_produces_an_event() {
    let e = engine(1, PollMode::Blocking);
    let bar = TempBar::new("exit", 4096);
    let mut src = TestSource::spawn(1);
    let a = source::acquire(src.pid, src.fds[0], 0, 0).unwrap();
    let start = a.start;
    let r = RegisterRequest {
        pid: src.pid,
        pid_start: start,
        ..req(&bar, 0, 4, 7, a.fd.into_raw_fd())
    };
    let id = e.register(&r).unwrap();
    assert_eq!(e.info().unwrap()[3], 1, "watched pids");
    assert_eq!(src.cmd("signal 0"), "ok 1");
    assert!(bar.wait_for(0, &7u32.to_le_bytes()));
    let mut out = [Event::default(); 4];
    assert_eq!(e.events_wait(&mut out, 0), Ok(0));
    let pid = src.pid;
    src.exit();
    let n = e.events_wait(&mut out, 2000).unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        out[0].as_words(),
        [EVENT_SOURCE_EXITED, pid as u64, start, 0]
    );
    let info = e.info().unwrap();
    assert_eq!(info[3], 0, "no longer watched");
    assert_eq!(info[1], 1, "the registration stays until unregistered");
    e.unregister(id).unwrap();
    // A gone or mismatching source is refused at registration.
    let fd = efd();
    let raw = handover(&fd);
    let r = RegisterRequest {
        pid,
        pid_start: start,
        ..req(&bar, 0, 4, 7, raw)
    };
    assert_eq!(errno(e.register(&r)), Err(Errno::ESRCH));
    let me = std::process::id() as i32;
    let my_start = source::process_start(me).unwrap();
    let r = RegisterRequest {
        pid: me,
        pid_start: my_start + 1,
        ..req(&bar, 0, 4, 7, raw)
    };
    assert_eq!(errno(e.register(&r)), Err(Errno::ESRCH));
    let r = RegisterRequest {
        pid: me,
        pid_start: my_start,
        ..req(&bar, 0, 4, 7, raw)
    };
    let id = e.register(&r).unwrap();
    assert_eq!(e.info().unwrap()[3], 1);
    e.unregister(id).unwrap();
    assert_eq!(e.info().unwrap()[3], 0);
}

fn engine_threads(serial: u64) -> usize {
    let prefix = format!("iov{serial}");
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| {
            let c = c.trim_end();
            c.strip_prefix(&prefix)
                .is_some_and(|rest| rest.starts_with('w') || rest == "mon")
        })
        .count()
}

#[test]
fn close_joins_and_releases_everything() {
    let e = Arc::new(
        Engine::open(Config {
            workers: 3,
            canary_period_us: 1000,
            poll_mode: PollMode::Adaptive,
            spin_budget_us: 50,
            ..Config::default()
        })
        .unwrap(),
    );
    assert!(
        eventually(|| engine_threads(e.serial()) == 4),
        "{}",
        engine_threads(e.serial())
    );
    let bar = TempBar::new("close", 4096);
    let fd = efd();
    let raw = handover(&fd);
    e.register(&req(&bar, 0, 8, 1, raw)).unwrap();
    let waiter = {
        let e = e.clone();
        std::thread::spawn(move || {
            let mut out = [Event::default(); 1];
            e.events_wait(&mut out, -1)
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    e.close();
    assert_eq!(errno(waiter.join().unwrap()), Err(Errno::EBADF));
    assert_eq!(engine_threads(e.serial()), 0);
    assert!(closed_or_reused(raw, &fd), "the engine closed its eventfd");
    assert_eq!(errno(e.info()), Err(Errno::EBADF));
    assert_eq!(errno(e.unregister(1)), Err(Errno::EBADF));
    assert_eq!(
        errno(e.register(&req(&bar, 0, 8, 1, handover(&fd)))),
        Err(Errno::EBADF)
    );
    let mut out = [Event::default(); 1];
    assert_eq!(errno(e.events_wait(&mut out, 10)), Err(Errno::EBADF));
    e.close();
}

/// The unregister barrier under load: once `unregister` returns, the registration's
/// location is never written again.
#[test]
fn unregister_is_a_barrier_under_load() {
    const REGS: usize = 64;
    const MIN_SIGNALS: u64 = 1_000_000;
    let e = engine(2, PollMode::Blocking);
    let bar = TempBar::new("barrier", 4096);
    let sources: Vec<OwnedFd> = (0..REGS).map(|_| efd()).collect();
    let data = |k: usize| 0xA5A5_0000_0000_0000u64 | (k as u64 + 1);
    let register = |k: usize| {
        e.register(&req(&bar, 8 * k as u64, 8, data(k), handover(&sources[k])))
            .unwrap()
    };
    let mut ids: Vec<Option<u64>> = (0..REGS).map(|k| Some(register(k))).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let raw: Arc<Vec<i32>> = Arc::new(sources.iter().map(|f| f.as_raw_fd()).collect());
    let signallers: Vec<_> = (0..2)
        .map(|t| {
            let (stop, sent, raw) = (stop.clone(), sent.clone(), raw.clone());
            std::thread::spawn(move || {
                let mut k = t * 7;
                while !stop.load(Ordering::Relaxed) {
                    let mut n = 0;
                    for _ in 0..256 {
                        sys::write_u64(raw[k % REGS], 1).unwrap();
                        k += 1;
                        n += 1;
                    }
                    sent.fetch_add(n, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let t0 = Instant::now();
    let mut cycles = 0u64;
    let mut down: Vec<usize> = Vec::new();
    let mut k = 0usize;
    while sent.load(Ordering::Relaxed) < MIN_SIGNALS || t0.elapsed() < Duration::from_millis(1500) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "too slow: {:?}",
            sent
        );
        // Take a few registrations down; zero their bytes once unregister has returned.
        for _ in 0..4 {
            let id = ids[k].take().unwrap();
            e.unregister(id).unwrap();
            bar.zero(8 * k as u64, 8);
            down.push(k);
            k = (k + 5) % REGS;
            while ids[k].is_none() {
                k = (k + 1) % REGS;
            }
        }
        // Hold: nothing may land there any more, while everything else keeps firing.
        std::thread::sleep(Duration::from_millis(1));
        for &d in &down {
            assert_eq!(
                bar.read_u64(8 * d as u64),
                0,
                "write after unregister of {d}"
            );
        }
        for d in down.drain(..) {
            ids[d] = Some(register(d));
        }
        cycles += 1;
    }
    // Final hold with half of them down.
    for (k, id) in ids.iter_mut().enumerate().filter(|(k, _)| k % 2 == 0) {
        e.unregister(id.take().unwrap()).unwrap();
        bar.zero(8 * k as u64, 8);
    }
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    for s in signallers {
        s.join().unwrap();
    }
    for k in (0..REGS).step_by(2) {
        assert_eq!(
            bar.read_u64(8 * k as u64),
            0,
            "write after unregister of {k}"
        );
    }
    for k in (1..REGS).step_by(2) {
        assert!(
            eventually(|| bar.read_u64(8 * k as u64) == data(k)),
            "live registration {k}"
        );
    }
    let total = sent.load(Ordering::Relaxed);
    assert!(total >= MIN_SIGNALS);
    let triggers: u64 = e
        .registration_stats()
        .unwrap()
        .iter()
        .map(|r| r.counters.triggers)
        .sum();
    assert!(triggers > 0);
    eprintln!(
        "barrier: {total} signals, {cycles} cycles ({} unregisters) in {:?}",
        cycles * 4,
        t0.elapsed()
    );
    assert_eq!(e.info().unwrap()[1], (REGS / 2) as u64);
}

/// No write is missed by the final counters: a signal storm, one signal at a time, each
/// waited for in the BAR (so every write that lands is seen and counted), and unregister
/// racing it. The counters unregister returns equal the writes that landed, exactly; the
/// signals consumed by the worker plus those left in the eventfd equal the signals sent.
#[test]
fn unregister_returns_every_write_that_landed() {
    use ioeventd_native::bar::Mapping;
    use ioeventd_native::mmio::MmioCell;
    for mode in [PollMode::Busy, PollMode::Blocking] {
        let e = engine(1, mode);
        let bar = TempBar::new("final", 4096);
        let cell = MmioCell::new(Mapping::open(bar.path()).unwrap(), 0x80, 8).unwrap();
        let src = efd();
        let id = e
            .register(&req(&bar, 0x80, 8, 0x5A5A, handover(&src)))
            .unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicU64::new(0));
        let storm = {
            let (done, progress, raw) = (done.clone(), progress.clone(), src.as_raw_fd());
            std::thread::spawn(move || {
                let (mut sent, mut landed) = (0u64, 0u64);
                loop {
                    sys::write_u64(raw, 1).unwrap();
                    sent += 1;
                    // Wait for this write, or for the barrier (after which the BAR tells
                    // for good whether it landed).
                    loop {
                        let over = done.load(Ordering::Acquire);
                        if cell.load() == 0x5A5A {
                            landed += 1;
                            progress.store(landed, Ordering::Relaxed);
                            cell.store(0);
                            break;
                        }
                        if over {
                            return (sent, landed);
                        }
                        std::hint::spin_loop();
                    }
                }
            })
        };
        // Unregister in the middle of the storm (however loaded the machine is).
        let t0 = Instant::now();
        while progress.load(Ordering::Relaxed) < 200 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let last = e.unregister(id).unwrap();
        done.store(true, Ordering::Release);
        let (sent, landed) = storm.join().unwrap();
        assert!(landed > 100, "{mode:?}: only {landed} writes");
        assert_eq!(last.triggers, landed, "{mode:?}: every write that landed");
        let left = sys::read_counter(src.as_raw_fd()).unwrap_or(0);
        assert_eq!(last.signals + left, sent, "{mode:?}: every signal");
        assert!(last.last_trigger_unix_ns > 0);
        e.close();
    }
}

#[test]
fn pid_watches_are_refcounted_and_fds_unique() {
    let e = engine(2, PollMode::Blocking);
    let bar = TempBar::new("pidref", 4096);
    let me = std::process::id() as i32;
    let a = efd();
    let b = efd();
    let (ra, rb) = (handover(&a), handover(&b));
    let ia = e
        .register(&RegisterRequest {
            pid: me,
            ..req(&bar, 0, 4, 1, ra)
        })
        .unwrap();
    assert_eq!(
        errno(e.register(&req(&bar, 8, 4, 1, ra))),
        Err(Errno::EEXIST),
        "fd already owned"
    );
    let ib = e
        .register(&RegisterRequest {
            pid: me,
            ..req(&bar, 8, 4, 1, rb)
        })
        .unwrap();
    assert_eq!(e.info().unwrap()[1..4], [2, 1, 1]);
    e.unregister(ia).unwrap();
    assert_eq!(e.info().unwrap()[1..4], [1, 1, 1]);
    e.unregister(ib).unwrap();
    assert_eq!(e.info().unwrap()[1..4], [0, 0, 0]);
    let mut out = [Event::default(); 1];
    assert_eq!(
        e.events_wait(&mut out, 0),
        Ok(0),
        "unwatching is not an exit"
    );
}

/// The kernel's meaning of one eventfd registered several times (each virqfd gets the
/// wake-up): the same (pid, fd) acquired three times, at three offsets. One signal performs
/// all three writes; unregistering one leaves the other two, and the removed one never
/// writes again. The source's eventfd stays blocking throughout.
#[test]
fn one_eventfd_at_three_offsets_writes_all_three() {
    let e = engine(2, PollMode::Blocking);
    let bar = TempBar::new("shared-efd", 4096);
    let mut src = TestSource::spawn(1);
    let flags_before = src.cmd("flags 0");
    let offsets = [0x100u64, 0x208, 0x310];
    let data = |k: usize| 0x5A5A_0000u64 | (k as u64 + 1);
    let mut ids = Vec::new();
    let mut raws = Vec::new();
    for (k, &off) in offsets.iter().enumerate() {
        let a = source::acquire(src.pid, src.fds[0], 0, 0).unwrap();
        let raw = a.fd.into_raw_fd();
        raws.push(raw);
        ids.push(e.register(&req(&bar, off, 4, data(k), raw)).unwrap());
    }
    // The exact same local fd twice is refused; another descriptor of it is not.
    assert_eq!(
        errno(e.register(&req(&bar, 0x400, 4, 9, raws[0]))),
        Err(Errno::EEXIST)
    );
    let info = e.info().unwrap();
    assert_eq!(info[1], 3, "three registrations");
    assert_eq!(info[9], 1, "one watched eventfd");
    // One epoll entry on one worker: all three are served by the same one.
    let w = e.worker_of(ids[0]).unwrap();
    assert!(ids.iter().all(|&id| e.worker_of(id) == Ok(w)));
    // The extra descriptors were closed (only the first one is kept): their numbers are
    // free, or (tests run in parallel threads) now hold something else.
    let kept = source::eventfd_identity(raws[0], 0);
    for &raw in &raws[1..] {
        assert!(
            !fd_is_open(raw) || source::eventfd_identity(raw, 0) != kept,
            "fd {raw}"
        );
    }
    assert_eq!(src.cmd("signal 0 2"), "ok 2");
    for (k, &off) in offsets.iter().enumerate() {
        assert!(
            bar.wait_for(off, &(data(k) as u32).to_le_bytes()),
            "target {k}"
        );
    }
    // Each target counts every wake-up and every signal itself (one or two wake-ups,
    // depending on whether the two signals coalesced): the three agree.
    assert!(eventually(|| ids
        .iter()
        .all(|&id| reg_stats(&e, id).signals == 2)));
    let first = reg_stats(&e, ids[0]);
    assert!(
        ids.iter()
            .all(|&id| reg_stats(&e, id).as_words()[..2] == first.as_words()[..2]),
        "{first:?}"
    );
    let base = first.triggers;

    // Unregister the middle one: a barrier for it alone.
    e.unregister(ids[1]).unwrap();
    assert_eq!(e.info().unwrap()[9], 1, "the eventfd stays watched");
    for &off in &offsets {
        bar.zero(off, 4);
    }
    for round in 1..=3u64 {
        assert_eq!(src.cmd("signal 0"), "ok 1");
        assert!(eventually(|| reg_stats(&e, ids[0]).triggers
            == base + round
            && reg_stats(&e, ids[2]).triggers == base + round));
    }
    assert!(bar.wait_for(offsets[0], &(data(0) as u32).to_le_bytes()));
    assert!(bar.wait_for(offsets[2], &(data(2) as u32).to_le_bytes()));
    assert_eq!(
        bar.read(offsets[1], 4),
        vec![0; 4],
        "the removed one never writes again"
    );
    assert!(e
        .registration_stats()
        .unwrap()
        .iter()
        .all(|r| r.id != ids[1]));
    // The flags of the source's file were never touched (no O_NONBLOCK).
    assert_eq!(src.cmd("flags 0"), flags_before);
    let flags: i32 = flags_before.trim_start_matches("ok ").parse().unwrap();
    assert_eq!(flags & sys::O_NONBLOCK, 0);

    // The eventfd and its epoll entry go with the last registration.
    e.unregister(ids[0]).unwrap();
    assert_eq!(e.info().unwrap()[9], 1);
    e.unregister(ids[2]).unwrap();
    assert_eq!(e.info().unwrap()[1..3], [0, 0]);
    assert_eq!(e.info().unwrap()[9], 0);
    // Still alive on the source's side, and nothing in this process reads it any more.
    assert_eq!(src.cmd("signal 0 5"), "ok 5");
    assert_eq!(src.cmd("value 0"), "ok 5");
    src.exit();
}

/// Registration of many at once: one control operation per worker; results per request,
/// in order; requests on one eventfd within the batch share its entry.
#[test]
fn register_batch_results_per_request() {
    let e = engine(2, PollMode::Blocking);
    let bar = TempBar::new("batch", 4096);
    let a = efd();
    let b = efd();
    let (a1, a2, b1) = (handover(&a), handover(&a), handover(&b));
    let reqs = [
        req(&bar, 0x00, 4, 0x11, a1),
        req(&bar, 0x03, 4, 0x22, b1), // misaligned
        req(&bar, 0x08, 4, 0x33, a2), // same eventfd as the first
        req(&bar, 0x10, 4, 0x44, b1), // b1 is still the caller's: fine
        req(&bar, 0x18, 4, 0x55, b1), // the same local fd twice
    ];
    let r = e.register_batch(&reqs);
    assert_eq!(errno(r[1]), Err(Errno::EINVAL));
    assert_eq!(errno(r[4]), Err(Errno::EEXIST));
    let ids: Vec<u64> = [0, 2, 3].iter().map(|&i| r[i].unwrap()).collect();
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "ids in request order");
    assert_eq!(
        e.worker_of(ids[0]),
        e.worker_of(ids[1]),
        "one eventfd, one worker"
    );
    let info = e.info().unwrap();
    assert_eq!(info[1], 3);
    assert_eq!(info[9], 2, "two eventfds");
    sys::write_u64(a.as_raw_fd(), 1).unwrap();
    assert!(bar.wait_for(0x00, &0x11u32.to_le_bytes()));
    assert!(bar.wait_for(0x08, &0x33u32.to_le_bytes()));
    sys::write_u64(b.as_raw_fd(), 1).unwrap();
    assert!(bar.wait_for(0x10, &0x44u32.to_le_bytes()));
    assert_eq!(bar.read(0x18, 4), vec![0; 4]);
    let u: Vec<_> = e
        .unregister_batch(&[ids[0], 999, ids[2], ids[0]])
        .into_iter()
        .map(|r| errno(r.map(|c| c.triggers)))
        .collect();
    assert_eq!(
        u,
        vec![Ok(1), Err(Errno::ENOENT), Ok(1), Err(Errno::ENOENT)]
    );
    assert_eq!(e.info().unwrap()[1], 1);
    assert_eq!(e.info().unwrap()[9], 1);
    e.unregister(ids[1]).unwrap();
    assert_eq!(e.info().unwrap()[1..3], [0, 0]);
    e.close();
    assert_eq!(
        e.register_batch(&reqs[..1])
            .into_iter()
            .map(errno)
            .collect::<Vec<_>>(),
        vec![Err(Errno::EBADF)]
    );
}

/// `shard = device`: every registration of one device (the directory holding its BAR
/// files) is served by the worker its hash picks; other devices may land elsewhere.
#[test]
fn device_sharding_keeps_a_device_on_one_worker() {
    const WORKERS: u64 = 4;
    let e = Engine::open(Config {
        workers: WORKERS as u32,
        shard: ShardMode::Device,
        ..Config::default()
    })
    .unwrap();
    assert_eq!(e.info().unwrap()[7], 1, "shard = device");
    let root = std::env::temp_dir().join(format!("ioeventd-shard-{}", std::process::id()));
    // Devices whose hashes pick at least two different workers.
    let mut devices = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0.. {
        let dir = root.join(format!("0000:00:{i:02x}.0"));
        std::fs::create_dir_all(&dir).unwrap();
        for r in ["resource0", "resource2"] {
            std::fs::write(dir.join(r), vec![0u8; 4096]).unwrap();
        }
        let canonical = dir.canonicalize().unwrap();
        let w = fnv1a(canonical.as_os_str().as_bytes()) % WORKERS;
        seen.insert(w);
        devices.push((dir, w as usize));
        if devices.len() >= 3 && seen.len() >= 2 {
            break;
        }
    }
    let mut fds = Vec::new();
    let mut regs = Vec::new();
    for (d, (dir, want)) in devices.iter().enumerate() {
        for (k, r) in ["resource0", "resource2", "resource0"].iter().enumerate() {
            let fd = efd();
            let path = dir.join(r);
            let id = e
                .register(&RegisterRequest {
                    bar: Bar::File(&path),
                    offset: 8 * k as u64,
                    width: 8,
                    data: (d * 16 + k) as u64 + 1,
                    efd: handover(&fd),
                    pid: 0,
                    pid_start: 0,
                })
                .unwrap();
            assert_eq!(e.worker_of(id), Ok(*want), "{} {r}", dir.display());
            regs.push((id, path, 8 * k as u64, (d * 16 + k) as u64 + 1));
            fds.push(fd);
        }
    }
    let workers: std::collections::HashSet<usize> =
        regs.iter().map(|r| e.worker_of(r.0).unwrap()).collect();
    assert!(workers.len() >= 2, "two devices on two workers");
    // And they write where they should.
    for fd in &fds {
        sys::write_u64(fd.as_raw_fd(), 1).unwrap();
    }
    for (_, path, off, data) in &regs {
        let want = data.to_le_bytes();
        assert!(eventually(|| {
            let f = std::fs::read(path).unwrap();
            f[*off as usize..*off as usize + 8] == want
        }));
    }
    e.close();
    std::fs::remove_dir_all(&root).unwrap();
}

fn worker_tid(serial: u64, i: usize) -> Option<std::path::PathBuf> {
    let want = format!("iov{serial}w{i}");
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(|t| t.ok().map(|t| t.path()))
        .find(|p| std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim_end() == want))
}

fn cpus_allowed_list(task: &std::path::Path) -> String {
    std::fs::read_to_string(task.join("status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

/// `cpus`: worker i runs on `cpus[i % len]` only (as the kernel reports it for the thread).
#[test]
fn workers_are_pinned_to_their_cpus() {
    let allowed = sys::current_thread_cpus().unwrap();
    let first = allowed[0];
    let last = *allowed.last().unwrap();
    let e = Engine::open(Config {
        workers: 3,
        cpus: vec![last, first],
        ..Config::default()
    })
    .unwrap();
    assert_eq!(e.info().unwrap()[8], 2, "pinned cpus");
    for (i, cpu) in [last, first, last].iter().enumerate() {
        let task = worker_tid(e.serial(), i).expect("worker thread");
        assert_eq!(cpus_allowed_list(&task), cpu.to_string(), "worker {i}");
    }
    // The monitor is not pinned.
    e.close();
    // Refusals: an id beyond CPU_SETSIZE, a CPU this process may not use.
    let bad = |cpus: Vec<u32>| {
        Engine::open(Config {
            workers: 1,
            cpus,
            ..Config::default()
        })
        .err()
        .map(Errno::from)
    };
    assert_eq!(bad(vec![sys::CPU_SETSIZE as u32]), Some(Errno::EINVAL));
    if !allowed.contains(&1023) {
        assert_eq!(bad(vec![1023]), Some(Errno::EINVAL));
    }
}
