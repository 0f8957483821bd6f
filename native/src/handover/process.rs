//! What the agent's source binding (service/security/source_binding.ts) needs to know of a
//! process: its uids, parent, start time and cgroup, from `/proc` (which TypeScript cannot
//! read under Deno's narrow permissions); and which local user holds the client end of a
//! loopback TCP connection (`/proc/net/tcp`, `/proc/net/tcp6`).

use crate::source::{self, SourceError};

/// A process as `/proc/<pid>` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessFacts {
    /// Real uid.
    pub uid: u32,
    /// Effective uid.
    pub euid: u32,
    /// Parent pid (0 for the namespace's init).
    pub ppid: i32,
    /// Thread-group id (differs from the pid for a thread).
    pub tgid: i32,
    /// Start time (clock ticks since boot), as sources record it.
    pub start: u64,
    /// The cgroup v2 path (`0::<path>`), else the first hierarchy's path; "" if none.
    pub cgroup: String,
}

/// The facts of `pid`; [`SourceError::ProcessGone`] when it cannot be read.
pub fn facts(pid: i32) -> Result<ProcessFacts, SourceError> {
    if pid <= 0 {
        return Err(SourceError::ProcessGone);
    }
    let status =
        crate::procfs::read(format!("/proc/{pid}/status")).map_err(|_| SourceError::ProcessGone)?;
    let start = source::process_start(pid)?;
    let cgroup = crate::procfs::read(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    parse(&status, &cgroup, start).ok_or(SourceError::ProcessGone)
}

fn parse(status: &str, cgroup: &str, start: u64) -> Option<ProcessFacts> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let mut uids = field("Uid:")?.split_whitespace();
    let uid = uids.next()?.parse().ok()?;
    let euid = uids.next()?.parse().ok()?;
    let ppid = field("PPid:")?.parse().ok()?;
    let tgid = field("Tgid:")?.parse().ok()?;
    let v2 = cgroup.lines().find_map(|l| l.strip_prefix("0::"));
    let any = cgroup.lines().next().and_then(|l| l.splitn(3, ':').nth(2));
    Some(ProcessFacts {
        uid,
        euid,
        ppid,
        tgid,
        start,
        cgroup: v2.or(any).unwrap_or("").to_string(),
    })
}

/// The uid holding the client end of the established loopback TCP connection from
/// `client_port` to `server_port`, or `None` (not loopback, not found).
pub fn loopback_tcp_uid(client_port: u16, server_port: u16) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|path| {
        let text = crate::procfs::read(path).ok()?;
        find_tcp_uid(&text, client_port, server_port)
    })
}

fn loopback(addr_hex: &str) -> bool {
    match addr_hex.len() {
        // 127.0.0.0/8, stored as a little-endian u32: the first octet is the last byte.
        8 => addr_hex.ends_with("7F"),
        // ::1, or ::ffff:127.x.y.z.
        32 => {
            addr_hex == "00000000000000000000000001000000"
                || (addr_hex.starts_with("0000000000000000FFFF0000") && addr_hex.ends_with("7F"))
        }
        _ => false,
    }
}

fn find_tcp_uid(text: &str, client_port: u16, server_port: u16) -> Option<u32> {
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || f[3] != "01" {
            continue;
        }
        let (Some((la, lp)), Some((ra, rp))) = (f[1].split_once(':'), f[2].split_once(':')) else {
            continue;
        };
        let port = |p: &str| u16::from_str_radix(p, 16).ok();
        if port(lp) == Some(client_port)
            && port(rp) == Some(server_port)
            && loopback(la)
            && loopback(ra)
        {
            return f[7].parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_facts() {
        let f = facts(std::process::id() as i32).unwrap();
        assert!(f.start > 0);
        assert!(f.ppid > 0);
        assert_eq!(f.tgid, std::process::id() as i32);
        assert_eq!(facts(-1), Err(SourceError::ProcessGone));
    }

    #[test]
    fn parses_status_and_tcp_tables() {
        let status = "Name:\tx\nTgid:\t7\nPPid:\t3\nUid:\t1000\t1001\t1000\t1000\n";
        let f = parse(status, "0::/kubepods/pod1/c1\n", 9).unwrap();
        assert_eq!(
            (f.uid, f.euid, f.ppid, f.tgid, f.start),
            (1000, 1001, 3, 7, 9)
        );
        assert_eq!(f.cgroup, "/kubepods/pod1/c1");
        assert_eq!(parse(status, "12:cpu:/a\n", 9).unwrap().cgroup, "/a");
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n\
                   0: 0100007F:D431 0100007F:C383 01 00000000:00000000 00:00000000 00000000  1000 0 1\n\
                   1: 0A00000A:D432 0100007F:C383 01 00000000:00000000 00:00000000 00000000  1001 0 1\n";
        assert_eq!(find_tcp_uid(tcp, 0xD431, 0xC383), Some(1000));
        assert_eq!(find_tcp_uid(tcp, 0xD432, 0xC383), None);
        assert_eq!(find_tcp_uid(tcp, 0xD431, 1), None);
    }
}
