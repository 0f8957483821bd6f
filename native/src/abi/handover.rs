//! The hand-over intake (`handover/`), its client, and the process facts the agent's
//! source binding reads. Word orders of the `out` records are the `*_WORDS` constants
//! below (service/native/handover.ts mirrors them).

use super::{ret_i32, ret_i64};
use crate::handover::{self, client, process, wire::Kind, Limits, Server};
use crate::sys::{self, Errno};
use std::os::fd::IntoRawFd;
use std::time::Duration;

/// `ioeventd_handover_take`'s record: sender pid, sender uid, sender start time, eventfd
/// identity (0 for a VFIO device), batch (the message), kind (1 eventfd, 2 VFIO device).
pub const TAKE_WORDS: u64 = 6;
/// `ioeventd_handover_stats`'s record: handles held, messages accepted, messages refused,
/// handles expired, descriptors closed (refused or expired).
pub const STATS_WORDS: u64 = 5;
/// `ioeventd_process_info`'s record: uid, euid, ppid, tgid, start time.
pub const PROCESS_WORDS: u64 = 5;
/// `ioeventd_peer_cred`'s record: pid, uid, gid.
pub const PEER_WORDS: u64 = 3;

fn utf8<'a>(ptr: *const u8) -> Result<&'a str, Errno> {
    std::str::from_utf8(sys::abi_cstr(ptr).ok_or(Errno::EFAULT)?).map_err(|_| Errno::EINVAL)
}

fn kind_of(code: u32) -> Result<Kind, Errno> {
    match code {
        1 => Ok(Kind::Eventfd),
        2 => Ok(Kind::Vfio),
        _ => Err(Errno::EINVAL),
    }
}

/// Opens an intake at `path` (socket mode `mode`): unused handles live `ttl_ms`, at most
/// `max_handles` in all and `max_per_uid` per sender uid. Returns its handle (> 0).
#[no_mangle]
pub extern "C" fn ioeventd_handover_open(
    path: *const u8,
    mode: u32,
    ttl_ms: u32,
    max_handles: u32,
    max_per_uid: u32,
) -> i64 {
    ret_i64((|| {
        let path = utf8(path)?;
        if ttl_ms == 0 || max_handles == 0 || max_per_uid == 0 {
            return Err(Errno::EINVAL);
        }
        let limits = Limits {
            ttl: Duration::from_millis(u64::from(ttl_ms)),
            max_handles: max_handles as usize,
            max_per_uid: max_per_uid as usize,
        };
        Ok(handover::insert(Server::open(path, mode, limits)?) as i64)
    })())
}

/// Closes an intake: its socket is removed and every unused handle's descriptor closed.
#[no_mangle]
pub extern "C" fn ioeventd_handover_close(server: u64) -> i32 {
    ret_i32((|| {
        let s = handover::remove(server).ok_or(Errno::EBADF)?;
        s.close();
        Ok(0)
    })())
}

/// A local duplicate of `handle`'s descriptor if it was handed over for `owner` and is of
/// `kind` (1 eventfd, 2 VFIO device); `out` gets [`TAKE_WORDS`]. `ENOENT` unknown or
/// expired, `EACCES` another owner, `EMEDIUMTYPE` another kind.
#[no_mangle]
pub extern "C" fn ioeventd_handover_take(
    server: u64,
    handle: *const u8,
    owner: *const u8,
    kind: u32,
    out: *mut u64,
) -> i64 {
    ret_i64((|| {
        let out = sys::abi_slice_mut(out, TAKE_WORDS).ok_or(Errno::EFAULT)?;
        let s = handover::get(server)?;
        let (fd, info) = s.take(utf8(handle)?, utf8(owner)?, kind_of(kind)?)?;
        out.copy_from_slice(&[
            info.sender.pid as u64,
            u64::from(info.sender.uid),
            info.sender.start,
            info.eventfd_id,
            info.batch,
            info.kind.code(),
        ]);
        Ok(i64::from(fd.into_raw_fd()))
    })())
}

/// Closes the intake's copy of `handle` (used by a committed registration).
#[no_mangle]
pub extern "C" fn ioeventd_handover_consume(server: u64, handle: *const u8) -> i32 {
    ret_i32((|| {
        handover::get(server)?.consume(utf8(handle)?)?;
        Ok(0)
    })())
}

/// Records of descriptors received since the last call, as text lines
/// `handle owner kind pid uid start eventfd_id batch\n` (kind `e` or `v`), as many as fit
/// in `cap` bytes; returns the bytes written (the rest stay queued).
#[no_mangle]
pub extern "C" fn ioeventd_handover_received(server: u64, out: *mut u8, cap: u64) -> i64 {
    ret_i64((|| {
        let out = sys::abi_bytes_mut(out, cap).ok_or(Errno::EFAULT)?;
        let s = handover::get(server)?;
        let records = s.drain_received(out.len() / 64 + 1);
        let mut len = 0usize;
        let mut rest = Vec::new();
        for r in records {
            let line = format!(
                "{} {} {} {} {} {} {} {}\n",
                r.handle,
                r.owner,
                if r.kind == Kind::Eventfd { 'e' } else { 'v' },
                r.sender.pid,
                r.sender.uid,
                r.sender.start,
                r.eventfd_id,
                r.batch
            );
            if !rest.is_empty() || len + line.len() > out.len() {
                rest.push(r);
                continue;
            }
            out[len..len + line.len()].copy_from_slice(line.as_bytes());
            len += line.len();
        }
        s.requeue(rest);
        Ok(len as i64)
    })())
}

/// The intake's counters ([`STATS_WORDS`]).
#[no_mangle]
pub extern "C" fn ioeventd_handover_stats(server: u64, out: *mut u64) -> i32 {
    use std::sync::atomic::Ordering::Relaxed;
    ret_i32((|| {
        let out = sys::abi_slice_mut(out, STATS_WORDS).ok_or(Errno::EFAULT)?;
        let s = handover::get(server)?;
        let c = &s.counters;
        out.copy_from_slice(&[
            s.len() as u64,
            c.accepted.load(Relaxed),
            c.refused.load(Relaxed),
            c.expired.load(Relaxed),
            c.closed_fds.load(Relaxed),
        ]);
        Ok(0)
    })())
}

/// The VMM's client: hands `n` descriptors `fds` over for `owner` to the intake at
/// `socket_path`. `kinds`: one letter per descriptor (`e` eventfd, `v` VFIO device), or
/// null for all eventfds. `out_handles` (`cap` bytes) gets the agent's reply text,
/// NUL-terminated: `OK h-… h-…` (the handles in order) or `ERR <CODE> <sentence>`.
/// Returns the number of handles, or `-errno` (`EINVAL`, `EMEDIUMTYPE`, `ENOSPC`, `EPERM`
/// for the refusals; see native/README.md).
#[no_mangle]
pub extern "C" fn ioeventd_handover_send(
    socket_path: *const u8,
    owner: *const u8,
    fds: *const i32,
    kinds: *const u8,
    n: u32,
    out_handles: *mut u8,
    cap: u64,
) -> i64 {
    ret_i64((|| {
        let path = utf8(socket_path)?;
        let owner = utf8(owner)?;
        let fd_bytes = sys::abi_bytes(fds.cast(), u64::from(n) * 4).ok_or(Errno::EFAULT)?;
        let raw: Vec<i32> = fd_bytes
            .chunks_exact(4)
            .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let kinds: Vec<Kind> = if kinds.is_null() {
            vec![Kind::Eventfd; raw.len()]
        } else {
            utf8(kinds)?
                .bytes()
                .map(|b| match b {
                    b'e' => Ok(Kind::Eventfd),
                    b'v' => Ok(Kind::Vfio),
                    _ => Err(Errno::EINVAL),
                })
                .collect::<Result<_, _>>()?
        };
        if kinds.len() != raw.len() {
            return Err(Errno::EINVAL);
        }
        let pairs: Vec<(i32, Kind)> = raw.into_iter().zip(kinds).collect();
        let mut reply = String::new();
        let result = client::send(path, owner, &pairs, &mut reply);
        let out = sys::abi_bytes_mut(out_handles, cap).ok_or(Errno::EFAULT)?;
        if !out.is_empty() {
            let k = reply.len().min(out.len() - 1);
            out[..k].copy_from_slice(&reply.as_bytes()[..k]);
            out[k] = 0;
        }
        Ok(result?.len() as i64)
    })())
}

/// What the source binding needs of process `pid`: `out` gets [`PROCESS_WORDS`], `cgroup`
/// (`cap` bytes) its cgroup path; returns the path's full length. `-ESRCH`: no such process.
#[no_mangle]
pub extern "C" fn ioeventd_process_info(pid: i32, out: *mut u64, cgroup: *mut u8, cap: u64) -> i64 {
    ret_i64((|| {
        let out = sys::abi_slice_mut(out, PROCESS_WORDS).ok_or(Errno::EFAULT)?;
        let buf = sys::abi_bytes_mut(cgroup, cap).ok_or(Errno::EFAULT)?;
        let f = process::facts(pid)?;
        out.copy_from_slice(&[
            u64::from(f.uid),
            u64::from(f.euid),
            f.ppid as u64,
            f.tgid as u64,
            f.start,
        ]);
        let k = f.cgroup.len().min(buf.len());
        buf[..k].copy_from_slice(&f.cgroup.as_bytes()[..k]);
        Ok(f.cgroup.len() as i64)
    })())
}

/// `SO_PEERCRED` of a connected Unix socket of this process: `out` gets [`PEER_WORDS`].
#[no_mangle]
pub extern "C" fn ioeventd_peer_cred(fd: i32, out: *mut u64) -> i32 {
    ret_i32((|| {
        let out = sys::abi_slice_mut(out, PEER_WORDS).ok_or(Errno::EFAULT)?;
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let c = sys::peer_cred(fd)?;
        out.copy_from_slice(&[c.pid as u64, u64::from(c.uid), u64::from(c.gid)]);
        Ok(0)
    })())
}

/// The uid holding the client end of the loopback TCP connection `client_port` →
/// `server_port`; `-ENOENT` when there is none (not loopback, or gone).
#[no_mangle]
pub extern "C" fn ioeventd_tcp_peer_uid(client_port: u32, server_port: u32) -> i64 {
    ret_i64((|| {
        let (Ok(c), Ok(s)) = (u16::try_from(client_port), u16::try_from(server_port)) else {
            return Err(Errno::EINVAL);
        };
        process::loopback_tcp_uid(c, s)
            .map(i64::from)
            .ok_or(Errno::ENOENT)
    })())
}
