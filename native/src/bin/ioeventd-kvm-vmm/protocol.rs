//! The command protocol on stdin and stdout: the first line, then one reply line per
//! command line (the table in `main.rs`'s documentation).

use crate::doorbell_path::Mode;
use crate::guest_program::Program;
use crate::report::hello;
use crate::vmm::Vmm;
use ioeventd_native::sys::kvm::Kvm;
use std::io::{BufRead, Write};

/// Prints the first line, then answers each stdin line with one line (`ok ...` or
/// `err ...`) until `exit` (answered `ok`) or EOF.
pub(crate) fn serve(kvm: &Kvm, vmm: &mut Vmm) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", hello(vmm, kvm));
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "exit" {
            let _ = writeln!(out, "ok");
            let _ = out.flush();
            break;
        }
        let reply = match command(vmm, &line) {
            Ok(s) if s.is_empty() => "ok".to_string(),
            Ok(s) => format!("ok {s}"),
            Err(e) => format!("err {e}"),
        };
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
    }
}

/// One command line → the text of its reply after `ok` (empty: a bare `ok`), or the error.
fn command(vmm: &mut Vmm, line: &str) -> Result<String, String> {
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
            vmm.set_mode(m).map(|()| String::new())
        }
        Some(cmd @ ("run" | "start")) => {
            let p = Program::parse(words.get(1).ok_or("missing program")?)?;
            let (width, count) = (num(2)?, num(3)?);
            vmm.start(p, width, count)?;
            if cmd == "run" {
                vmm.wait()
            } else {
                Ok(String::new())
            }
        }
        Some("wait") => vmm.wait(),
        Some("progress") => vmm.progress().map(|n| n.to_string()),
        Some("stop") => vmm.request_stop().map(|()| String::new()),
        Some(other) => Err(format!("unknown command {other:?}")),
        None => Err("empty command".into()),
    }
}
