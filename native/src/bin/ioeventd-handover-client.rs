//! ioeventd-handover-client: a VMM stand-in that hands its eventfds over to the agent's
//! intake (SCM_RIGHTS, native/README.md "Hand-over intake") instead of letting the agent
//! take them, for the tests and as an example of the client (`ioeventd_handover_send`).
//!
//! Usage: `ioeventd-handover-client <socket> <owner> <count>`. Creates `count` eventfds,
//! hands them over (8 per message) and prints `{"pid":P,"fds":[...],"handles":[...]}` on
//! one line, then answers each stdin line with `ok ...` or `err ...`:
//! `signal <i> [n]`, `value <i>` (reads and so drains the counter), `resend [owner]`
//! (hands every eventfd over again, as a VMM does when it reconnects; prints the handles as
//! JSON), `send-pipe <owner>` (a pipe marked as an eventfd), `malformed` (every malformed
//! message of the test list, one reply per case as JSON), `exit`. EOF exits too.

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use ioeventd_native::handover::client;
use ioeventd_native::handover::wire::{self, Kind};
use ioeventd_native::sys::{self, Errno};
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

fn json_strings(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[{}]", quoted.join(","))
}

/// Hands `fds` over in messages of at most 8; every handle in order.
fn hand_over(path: &str, owner: &str, fds: &[RawFd]) -> Result<Vec<String>, String> {
    let mut handles = Vec::with_capacity(fds.len());
    for chunk in fds.chunks(sys::MAX_FDS) {
        let pairs: Vec<(RawFd, Kind)> = chunk.iter().map(|f| (*f, Kind::Eventfd)).collect();
        let mut reply = String::new();
        let h =
            client::send(path, owner, &pairs, &mut reply).map_err(|e| format!("{e}: {reply}"))?;
        handles.extend(h);
    }
    Ok(handles)
}

/// One raw message on a fresh connection; the agent's reply text (or what went wrong).
fn raw_case(path: &str, payload: &[u8], fds: &[RawFd]) -> String {
    let sock = match sys::seqpacket_connect(path.as_bytes(), client::REPLY_TIMEOUT_MS) {
        Ok(s) => s,
        Err(e) => return format!("connect failed: {e}"),
    };
    let mut reply = String::new();
    match client::exchange(sock.as_raw_fd(), payload, fds, &mut reply) {
        Ok(()) => reply,
        Err(e) => format!("exchange failed: {e}"),
    }
}

fn malformed(path: &str, owner: &str, efds: &[RawFd]) -> Result<String, Errno> {
    let extra: Vec<OwnedFd> = (0..24)
        .map(|_| sys::eventfd(0, sys::EFD_CLOEXEC))
        .collect::<Result<_, _>>()?;
    let many: Vec<RawFd> = extra.iter().map(AsRawFd::as_raw_fd).collect();
    let (pipe_r, _pipe_w) = sys::pipe()?;
    let e0 = efds.first().copied().unwrap_or(many[0]);
    let req = |k: &str| format!("{} {owner} {k}", wire::MAGIC);
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut case = |name: &str, payload: Vec<u8>, fds: &[RawFd]| {
        cases.push((name.to_string(), raw_case(path, &payload, fds)));
    };
    case("too_many_fds", req(&"e".repeat(9)).into_bytes(), &many[..9]);
    case("ctrunc", req(&"e".repeat(24)).into_bytes(), &many[..24]);
    case("not_eventfd", req("e").into_bytes(), &[pipe_r.as_raw_fd()]);
    case("not_vfio", req("v").into_bytes(), &[e0]);
    case(
        "mixed_bad_last",
        req("eee").into_bytes(),
        &[many[0], many[1], pipe_r.as_raw_fd()],
    );
    case("too_large", vec![b'x'; wire::MAX_PAYLOAD + 100], &many[..2]);
    case("garbage", b"hello".to_vec(), &many[..1]);
    case(
        "truncated",
        format!("{} {owner}", wire::MAGIC).into_bytes(),
        &many[..1],
    );
    case("count_mismatch", req("ee").into_bytes(), &many[..1]);
    case("no_fds", req("e").into_bytes(), &[]);
    case("empty_with_fd", Vec::new(), &many[..1]);
    case(
        "bad_owner",
        format!("{} a\u{7f}b e", wire::MAGIC).into_bytes(),
        &many[..1],
    );
    case("not_utf8", vec![0xff, 0xfe, 0x20], &many[..1]);
    let body: Vec<String> = cases
        .iter()
        .map(|(n, r)| {
            format!(
                "\"{n}\":{}",
                json_strings(std::slice::from_ref(r)).trim_matches(['[', ']'])
            )
        })
        .collect();
    Ok(format!("{{{}}}", body.join(",")))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(owner), Some(count)) = (
        args.get(1),
        args.get(2),
        args.get(3).and_then(|c| c.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: ioeventd-handover-client <socket> <owner> <count>");
        std::process::exit(2);
    };
    let efds: Vec<OwnedFd> = (0..count)
        .map(|_| sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK).expect("eventfd"))
        .collect();
    let fds: Vec<RawFd> = efds.iter().map(AsRawFd::as_raw_fd).collect();
    let handles = if count == 0 {
        Ok(Vec::new())
    } else {
        hand_over(path, owner, &fds)
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    match handles {
        Ok(h) => {
            let fd_list: Vec<String> = fds.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                out,
                "{{\"pid\":{},\"fds\":[{}],\"handles\":{}}}",
                std::process::id(),
                fd_list.join(","),
                json_strings(&h)
            );
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "{{\"pid\":{},\"error\":{}}}",
                std::process::id(),
                json_strings(&[e])
            );
        }
    }
    let _ = out.flush();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let w: Vec<&str> = line.split_whitespace().collect();
        let idx = |i: usize| -> Result<RawFd, String> {
            w.get(i)
                .and_then(|s| s.parse::<usize>().ok())
                .and_then(|k| fds.get(k).copied())
                .ok_or_else(|| "bad index".to_string())
        };
        let answer: Result<String, String> = match w.first().copied() {
            Some("signal") => idx(1).and_then(|fd| {
                let n: u64 = w.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
                for _ in 0..n {
                    sys::write_u64(fd, 1).map_err(|e| e.to_string())?;
                }
                Ok(n.to_string())
            }),
            Some("value") => idx(1).and_then(|fd| match sys::read_counter(fd) {
                Ok(v) => Ok(v.to_string()),
                Err(Errno::EAGAIN) => Ok("0".into()),
                Err(e) => Err(e.to_string()),
            }),
            Some("resend") => {
                let o = w.get(1).copied().unwrap_or(owner);
                hand_over(path, o, &fds).map(|h| json_strings(&h))
            }
            Some("send-pipe") => {
                let o = w.get(1).copied().unwrap_or(owner);
                match sys::pipe() {
                    Ok((r, _w)) => Ok(raw_case(
                        path,
                        format!("{} {o} e", wire::MAGIC).as_bytes(),
                        &[r.as_raw_fd()],
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
            Some("malformed") => malformed(path, owner, &fds).map_err(|e| e.to_string()),
            Some("exit") => break,
            _ => Err(format!("unknown command {line:?}")),
        };
        let _ = match answer {
            Ok(a) => writeln!(out, "ok {a}"),
            Err(e) => writeln!(out, "err {e}"),
        };
        let _ = out.flush();
    }
}
