//! The helper binaries: `ioeventd-test-source` commands and `ioeventd-baseline`.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
mod common;

use common::{eventually, TempBar, TestSource};
use ioeventd_native::engine::{Bar, Config, Engine, RegisterRequest};
use ioeventd_native::source;
use ioeventd_native::worker::PollMode;
use std::os::fd::IntoRawFd;
use std::process::Command;

fn json_u64(s: &str, key: &str) -> u64 {
    let at = s
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {s}"));
    let rest = &s[at + key.len() + 3..];
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse::<f64>().unwrap() as u64
}

#[test]
fn test_source_commands() {
    let mut src = TestSource::spawn(4);
    assert_eq!(src.fds.len(), 4);
    assert_eq!(src.cmd("value 0"), "ok 0");
    assert_eq!(src.cmd("signal 0"), "ok 1");
    assert_eq!(src.cmd("signal 0 4"), "ok 4");
    assert_eq!(src.cmd("value 0"), "ok 5");
    assert_eq!(src.cmd("signal-all 2"), "ok 8");
    assert_eq!(src.cmd("value 3"), "ok 2");
    assert_eq!(src.cmd("stress 1 2 1000 2"), "ok 2000");
    assert_eq!(src.cmd("value 1"), "ok 1002");
    assert_eq!(src.cmd("storm-start 0 3 2"), "ok");
    assert!(src.cmd("storm-start 0 3 2").starts_with("err"));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let stopped = src.cmd("storm-stop");
    let n: u64 = stopped.strip_prefix("ok ").unwrap().parse().unwrap();
    assert!(n > 0);
    let tp = src.cmd("throughput 0 1 1 0.05");
    assert!(tp.strip_prefix("ok ").unwrap().parse::<u64>().unwrap() > 0);
    assert!(src.cmd("signal 9").starts_with("err"));
    assert!(src.cmd("frobnicate").starts_with("err"));
    assert!(src.cmd("stress 2 1 1 1").starts_with("err"));
    src.exit();
}

#[test]
fn test_source_latency_against_the_engine() {
    let e = Engine::open(Config {
        workers: 1,
        poll_mode: PollMode::Busy,
        ..Config::default()
    })
    .unwrap();
    let bar = TempBar::new("latency", 4096);
    let mut src = TestSource::spawn(1);
    let a = source::acquire(src.pid, src.fds[0], 0, 0).unwrap();
    let req = RegisterRequest {
        bar: Bar::File(bar.path()),
        offset: 0x20,
        width: 4,
        data: 0x1234_5678,
        efd: a.fd.into_raw_fd(),
        pid: src.pid,
        pid_start: a.start,
    };
    let id = e.register(&req).unwrap();
    let reply = src.cmd(&format!(
        "latency 0 {} 32 4 0x12345678 500",
        bar.path().display()
    ));
    let json = reply
        .strip_prefix("ok ")
        .unwrap_or_else(|| panic!("{reply}"));
    assert_eq!(json_u64(json, "count"), 500, "{json}");
    assert_eq!(json_u64(json, "timeouts"), 0, "{json}");
    assert!(json_u64(json, "p50_ns") > 0);
    assert!(json_u64(json, "p99_ns") >= json_u64(json, "p50_ns"));
    assert!(eventually(|| e.registration_stats().unwrap()[0]
        .counters
        .triggers
        == 500));
    e.unregister(id).unwrap();
    src.exit();
}

#[test]
fn baseline_latency_and_throughput() {
    let exe = env!("CARGO_BIN_EXE_ioeventd-baseline");
    for mode in ["block", "busy"] {
        let out = Command::new(exe)
            .args(["latency", "--count", "300", "--mode", mode])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let json = String::from_utf8(out.stdout).unwrap();
        assert_eq!(json_u64(&json, "count"), 300, "{json}");
        assert!(json_u64(&json, "p999_ns") >= json_u64(&json, "p50_ns"));
    }
    let out = Command::new(exe)
        .args([
            "throughput",
            "--regs",
            "8",
            "--threads",
            "1",
            "--seconds",
            "0.2",
            "--mode",
            "block",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(json_u64(&json, "writes_per_sec") > 0, "{json}");
    assert!(
        json_u64(&json, "signals_per_sec") >= json_u64(&json, "writes_per_sec"),
        "{json}"
    );
    let bad = Command::new(exe)
        .args(["latency", "--mode", "nope"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
