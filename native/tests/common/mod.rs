//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ioeventd_native::sys::Errno;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A result with its error as the errno the C ABI reports for it (the crate's errors are
/// typed; the tests assert the ABI's numbers).
pub fn errno<T, E: Into<Errno>>(r: Result<T, E>) -> Result<T, Errno> {
    r.map_err(Into::into)
}

/// A temp file of `len` zero bytes standing in for a BAR; removed on drop.
pub struct TempBar {
    pub path: PathBuf,
}

impl TempBar {
    pub fn new(name: &str, len: usize) -> TempBar {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ioeventd-test-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, vec![0u8; len]).unwrap();
        TempBar { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let f = std::fs::File::open(&self.path).unwrap();
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset).unwrap();
        buf
    }

    pub fn read_u64(&self, offset: u64) -> u64 {
        u64::from_le_bytes(self.read(offset, 8).try_into().unwrap())
    }

    pub fn zero(&self, offset: u64, len: usize) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .unwrap();
        f.write_all_at(&vec![0u8; len], offset).unwrap();
    }

    /// Waits up to 2 s until `len` bytes at `offset` equal `want`.
    pub fn wait_for(&self, offset: u64, want: &[u8]) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            if self.read(offset, want.len()) == want {
                return true;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        false
    }
}

impl Drop for TempBar {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Polls `f` up to 2 s.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    f()
}

/// A running `ioeventd-test-source`.
pub struct TestSource {
    pub child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub pid: i32,
    pub fds: Vec<i32>,
}

fn json_number(s: &str, key: &str) -> i64 {
    let at = s.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    let digits: String = s[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap()
}

impl TestSource {
    pub fn spawn(count: usize) -> TestSource {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ioeventd-test-source"))
            .arg(count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let pid = json_number(&line, "pid") as i32;
        let list = &line[line.find('[').unwrap() + 1..line.find(']').unwrap()];
        let fds = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        TestSource {
            child,
            stdin,
            stdout,
            pid,
            fds,
        }
    }

    /// Sends one command, returns the reply line (without newline).
    pub fn cmd(&mut self, c: &str) -> String {
        writeln!(self.stdin, "{c}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    /// Sends `exit` and reaps the process.
    pub fn exit(mut self) {
        let _ = self.cmd("exit");
        let _ = self.child.wait();
    }
}

impl Drop for TestSource {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
