//! Unix sockets for the hand-over intake (`handover/`): `SOCK_SEQPACKET` listeners and
//! clients, `SO_PEERCRED`, and `recvmsg`/`sendmsg` with `SCM_RIGHTS` ancillary data.
//!
//! `recv_with_fds` is the one place descriptors enter the process from another one: every
//! descriptor the kernel installed is wrapped in an `OwnedFd` before anything else is
//! looked at, so every error path closes them (also when the control data was truncated).

use super::{check, new_fd, Errno, SysResult};
use std::ffi::{c_int, c_void};
use std::os::fd::{OwnedFd, RawFd};

const AF_UNIX: c_int = 1;
/// `SOCK_SEQPACKET`: reliable, ordered, message boundaries kept.
const SOCK_SEQPACKET: c_int = 5;
const SOCK_CLOEXEC: c_int = 0o2000000;
const SOCK_NONBLOCK: c_int = 0o4000;
const SOL_SOCKET: c_int = 1;
const SO_PEERCRED: c_int = 17;
const SO_SNDTIMEO: c_int = 21;
const SO_RCVTIMEO: c_int = 20;
const SCM_RIGHTS: c_int = 1;
/// `MSG_TRUNC` (in `msg_flags`: the payload did not fit).
pub const MSG_TRUNC: c_int = 0x20;
/// `MSG_CTRUNC` (in `msg_flags`: the control data did not fit; the kernel dropped fds).
pub const MSG_CTRUNC: c_int = 0x08;
const MSG_DONTWAIT: c_int = 0x40;
const MSG_NOSIGNAL: c_int = 0x4000;
const MSG_CMSG_CLOEXEC: c_int = 0x4000_0000;
/// Most descriptors one message may carry (the intake's bound, and the control buffer's).
pub const MAX_FDS: usize = 8;

#[repr(C)]
struct SockaddrUn {
    family: u16,
    path: [u8; 108],
}

#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

/// `struct msghdr` on x86_64.
#[repr(C)]
struct MsgHdr {
    name: *mut c_void,
    namelen: u32,
    iov: *mut IoVec,
    iovlen: usize,
    control: *mut c_void,
    controllen: usize,
    flags: c_int,
}

/// `struct cmsghdr` on x86_64 (16 bytes; the data follows, 8-byte aligned).
#[repr(C)]
struct CmsgHdr {
    len: usize,
    level: c_int,
    kind: c_int,
}

#[repr(C)]
struct Ucred {
    pid: i32,
    uid: u32,
    gid: u32,
}

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

const CMSG_HDR: usize = std::mem::size_of::<CmsgHdr>();
/// `CMSG_SPACE(MAX_FDS * 4)`, plus room for one more header so that an extra control
/// message shows up as such instead of only as `MSG_CTRUNC`.
const CONTROL_LEN: usize = CMSG_HDR + MAX_FDS * 4 + CMSG_HDR + 16;

extern "C" {
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, addr: *const SockaddrUn, len: u32) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn accept4(fd: c_int, addr: *mut c_void, len: *mut u32, flags: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const SockaddrUn, len: u32) -> c_int;
    fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut u32) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: u32) -> c_int;
    fn recvmsg(fd: c_int, msg: *mut MsgHdr, flags: c_int) -> isize;
    fn sendmsg(fd: c_int, msg: *const MsgHdr, flags: c_int) -> isize;
}

/// The peer of a connected Unix socket, as the kernel recorded it at `connect` time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// The peer's process id (in this process's pid namespace; 0 when it has none here).
    pub pid: i32,
    /// Its effective uid.
    pub uid: u32,
    /// Its effective gid.
    pub gid: u32,
}

fn sockaddr(path: &[u8]) -> SysResult<(SockaddrUn, u32)> {
    let mut a = SockaddrUn {
        family: AF_UNIX as u16,
        path: [0; 108],
    };
    if path.is_empty() || path.len() >= a.path.len() || path.contains(&0) {
        return Err(Errno::ENAMETOOLONG);
    }
    a.path[..path.len()].copy_from_slice(path);
    Ok((a, (2 + path.len() + 1) as u32))
}

fn seqpacket(flags: c_int) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall without pointers.
    new_fd(unsafe { socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0) })
}

/// A non-blocking `SOCK_SEQPACKET` listener bound at `path` (which must not exist).
pub fn seqpacket_listen(path: &[u8], backlog: i32) -> SysResult<OwnedFd> {
    let fd = seqpacket(SOCK_NONBLOCK)?;
    let (addr, len) = sockaddr(path)?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes for the duration of the call.
    check(unsafe { bind(raw(&fd), &addr, len) })?;
    // SAFETY: plain syscall without pointers.
    check(unsafe { listen(raw(&fd), backlog) })?;
    Ok(fd)
}

/// Accepts one connection (non-blocking, close-on-exec); `EAGAIN` when none is pending.
pub fn accept(listener: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: null address and length pointers are allowed (the peer address is not wanted).
    new_fd(unsafe {
        accept4(
            listener,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            SOCK_CLOEXEC | SOCK_NONBLOCK,
        )
    })
}

/// A blocking `SOCK_SEQPACKET` connection to `path`, with send and receive timeouts.
pub fn seqpacket_connect(path: &[u8], timeout_ms: u32) -> SysResult<OwnedFd> {
    let fd = seqpacket(0)?;
    let tv = Timeval {
        sec: i64::from(timeout_ms / 1000),
        usec: i64::from(timeout_ms % 1000) * 1000,
    };
    for opt in [SO_SNDTIMEO, SO_RCVTIMEO] {
        // SAFETY: `tv` is a valid timeval of the stated size for the duration of the call.
        check(unsafe {
            setsockopt(
                raw(&fd),
                SOL_SOCKET,
                opt,
                (&tv as *const Timeval).cast(),
                std::mem::size_of::<Timeval>() as u32,
            )
        })?;
    }
    let (addr, len) = sockaddr(path)?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes for the duration of the call.
    check(unsafe { connect(raw(&fd), &addr, len) })?;
    Ok(fd)
}

/// `getsockopt(SO_PEERCRED)`: who is at the other end of a connected Unix socket.
pub fn peer_cred(fd: RawFd) -> SysResult<PeerCred> {
    let mut c = Ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<Ucred>() as u32;
    // SAFETY: `c` is a writable ucred and `len` its size; the kernel writes at most `len`.
    check(unsafe {
        getsockopt(
            fd,
            SOL_SOCKET,
            SO_PEERCRED,
            (&mut c as *mut Ucred).cast(),
            &mut len,
        )
    })?;
    if len as usize != std::mem::size_of::<Ucred>() {
        return Err(Errno::EINVAL);
    }
    Ok(PeerCred {
        pid: c.pid,
        uid: c.uid,
        gid: c.gid,
    })
}

/// One message received with [`recv_with_fds`].
#[derive(Debug)]
pub struct Received {
    /// Payload bytes (at most the buffer's length).
    pub len: usize,
    /// Every descriptor the kernel installed, in order, already owned (close on drop).
    pub fds: Vec<OwnedFd>,
    /// `msg_flags` (`MSG_TRUNC`, `MSG_CTRUNC`).
    pub flags: c_int,
    /// A control message other than `SCM_RIGHTS` was present.
    pub foreign_control: bool,
}

/// `recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC)` into `buf`, with room for [`MAX_FDS`]
/// descriptors. `Ok(None)`: the peer closed the connection (a 0-byte read with no fds).
pub fn recv_with_fds(fd: RawFd, buf: &mut [u8]) -> SysResult<Option<Received>> {
    // u64 words: the control buffer must be aligned for cmsghdr.
    let mut control = [0u64; CONTROL_LEN.div_ceil(8)];
    let mut iov = IoVec {
        base: buf.as_mut_ptr().cast(),
        len: buf.len(),
    };
    let mut msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: control.as_mut_ptr().cast(),
        controllen: std::mem::size_of_val(&control),
        flags: 0,
    };
    // SAFETY: `msg` describes one live, writable iovec over `buf` and a live, aligned,
    // writable control buffer of `controllen` bytes; both outlive the call.
    let n = unsafe { recvmsg(fd, &mut msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(Errno::last());
    }
    // Take ownership of every descriptor before looking at anything else.
    let mut fds = Vec::new();
    let mut foreign_control = false;
    let base = control.as_ptr().cast::<u8>();
    let total = msg.controllen.min(std::mem::size_of_val(&control));
    let mut off = 0usize;
    while off + CMSG_HDR <= total {
        // SAFETY: `off + CMSG_HDR <= total <= size of control`, and `off` is a multiple of 8
        // (cmsg alignment), so the header is in bounds and aligned.
        let hdr = unsafe { &*base.add(off).cast::<CmsgHdr>() };
        if hdr.len < CMSG_HDR || off + hdr.len > total {
            break;
        }
        let data = hdr.len - CMSG_HDR;
        if hdr.level == SOL_SOCKET && hdr.kind == SCM_RIGHTS {
            for i in 0..data / 4 {
                // SAFETY: `off + CMSG_HDR + 4 * i + 4 <= off + hdr.len <= total`: in bounds;
                // read_unaligned because the ints are only 4-byte aligned.
                let raw_fd = unsafe {
                    base.add(off + CMSG_HDR + 4 * i)
                        .cast::<i32>()
                        .read_unaligned()
                };
                if raw_fd >= 0 {
                    fds.push(super::own_fd(raw_fd));
                }
            }
        } else {
            foreign_control = true;
        }
        off += (hdr.len + 7) & !7;
    }
    if n == 0 && fds.is_empty() && msg.flags & MSG_CTRUNC == 0 {
        return Ok(None);
    }
    Ok(Some(Received {
        len: n as usize,
        fds,
        flags: msg.flags,
        foreign_control,
    }))
}

/// `sendmsg` of `payload` with `fds` as one `SCM_RIGHTS` message (none when empty).
/// At most [`MAX_FDS`]` * 4` descriptors (the tests send too many on purpose).
pub fn send_with_fds(fd: RawFd, payload: &[u8], fds: &[RawFd]) -> SysResult<usize> {
    const MAX_SEND: usize = MAX_FDS * 4;
    if fds.len() > MAX_SEND {
        return Err(Errno::EINVAL);
    }
    let mut control = [0u64; (CMSG_HDR + MAX_SEND * 4).div_ceil(8)];
    let mut iov = IoVec {
        base: payload.as_ptr().cast_mut().cast(),
        len: payload.len(),
    };
    let controllen = if fds.is_empty() {
        0
    } else {
        let hdr = control.as_mut_ptr().cast::<CmsgHdr>();
        // SAFETY: the control buffer is aligned for cmsghdr and large enough for the header
        // and `fds.len() <= MAX_SEND` ints after it.
        unsafe {
            hdr.write(CmsgHdr {
                len: CMSG_HDR + fds.len() * 4,
                level: SOL_SOCKET,
                kind: SCM_RIGHTS,
            });
            let data = control
                .as_mut_ptr()
                .cast::<u8>()
                .add(CMSG_HDR)
                .cast::<i32>();
            for (i, f) in fds.iter().enumerate() {
                data.add(i).write_unaligned(*f);
            }
        }
        (CMSG_HDR + fds.len() * 4 + 7) & !7
    };
    let msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: &mut iov,
        iovlen: 1,
        control: if controllen == 0 {
            std::ptr::null_mut()
        } else {
            control.as_mut_ptr().cast()
        },
        controllen,
        flags: 0,
    };
    // SAFETY: `msg` describes one live iovec over `payload` (only read by the kernel) and a
    // live control buffer of `controllen` bytes.
    let n = unsafe { sendmsg(fd, &msg, MSG_NOSIGNAL) };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

/// Sends one message without descriptors (a reply); never raises SIGPIPE.
pub fn send_message(fd: RawFd, payload: &[u8]) -> SysResult<usize> {
    send_with_fds(fd, payload, &[])
}

/// Receives one message without descriptors (a reply), waiting up to `timeout_ms`
/// (`EAGAIN` past it); any descriptor sent along is closed. 0: the peer closed.
pub fn recv_message(fd: RawFd, buf: &mut [u8], timeout_ms: i32) -> SysResult<usize> {
    loop {
        if !super::poll_readable(fd, timeout_ms)? {
            return Err(Errno::EAGAIN);
        }
        match recv_with_fds(fd, buf) {
            Ok(Some(r)) => return Ok(r.len),
            Ok(None) => return Ok(0),
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn raw(fd: &OwnedFd) -> RawFd {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}
