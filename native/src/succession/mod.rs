//! The succession channel: how a successor agent takes over from a running one on the same
//! host (README.md, "Upgrades"). The running agent listens on a `SOCK_SEQPACKET` socket in
//! its state directory; only a process of the same effective uid may connect (the socket is
//! 0600 in a 0700 directory, and the peer's `SO_PEERCRED` uid is checked again here). The
//! messages are the agent's own (service/upgrade/protocol.ts); this module only carries
//! them, each with up to [`sys::MAX_FDS`] descriptors as one `SCM_RIGHTS` message, because
//! Deno cannot pass descriptors.

pub mod notify;

use crate::sys::{self, Errno};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

/// Why a succession call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuccessionError {
    /// Nothing arrived within the timeout (`EAGAIN`).
    Timeout,
    /// The peer is not of this process's effective uid (`EPERM`).
    ForeignPeer,
    /// More descriptors than one message carries, or a bad argument (`EINVAL`).
    Invalid,
    /// The message did not fit the buffer, or its descriptors were cut (`EOVERFLOW`).
    Truncated,
    /// A system call failed.
    Sys(Errno),
}

impl From<SuccessionError> for Errno {
    fn from(e: SuccessionError) -> Errno {
        match e {
            SuccessionError::Timeout => Errno::EAGAIN,
            SuccessionError::ForeignPeer => Errno::EPERM,
            SuccessionError::Invalid => Errno::EINVAL,
            SuccessionError::Truncated => Errno::EOVERFLOW,
            SuccessionError::Sys(e) => e,
        }
    }
}

impl From<Errno> for SuccessionError {
    fn from(e: Errno) -> SuccessionError {
        SuccessionError::Sys(e)
    }
}

impl std::fmt::Display for SuccessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuccessionError::Timeout => f.write_str("nothing arrived in time"),
            SuccessionError::ForeignPeer => f.write_str("the peer runs as another user"),
            SuccessionError::Invalid => f.write_str("invalid arguments"),
            SuccessionError::Truncated => f.write_str("the message was truncated"),
            SuccessionError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for SuccessionError {}

/// This process's effective uid (the owner of `/proc/self`).
fn own_uid() -> Result<u32, SuccessionError> {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| SuccessionError::Sys(Errno::from_io(&e)))
}

/// Listens at `path` with file mode `mode`. The socket is bound under a private name and
/// renamed over `path`, so a connection made at any moment finds a listener (the one it
/// replaces, or this one) and none is refused.
pub fn listen(path: &str, mode: u32) -> Result<(OwnedFd, u64), SuccessionError> {
    bind_renamed(path, mode, 16)
}

/// Binds a `SOCK_SEQPACKET` listener at `<path>.<pid>`, sets its mode and renames it over
/// `path` (a socket or nothing there; any other file is refused with `EEXIST`). Returns the
/// listener and the inode of its file at `path` (a socket's own `fstat` names another one).
pub fn bind_renamed(
    path: &str,
    mode: u32,
    backlog: i32,
) -> Result<(OwnedFd, u64), SuccessionError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(SuccessionError::Sys(Errno::EEXIST));
        }
    }
    let private = format!("{path}.{}", std::process::id());
    let _ = std::fs::remove_file(&private);
    let fd = sys::seqpacket_listen(private.as_bytes(), backlog)?;
    let io = |e: std::io::Error| SuccessionError::Sys(Errno::from_io(&e));
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(mode & 0o777))
        .map_err(io)?;
    std::fs::rename(&private, path).map_err(io)?;
    let ino = std::fs::symlink_metadata(path).map_err(io)?.ino();
    Ok((fd, ino))
}

/// Removes `path` if it is still the socket file bound with inode `ino`, not a successor's.
pub fn unlink_if_own(path: &str, ino: u64) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == ino) {
        let _ = std::fs::remove_file(path);
    }
}

/// Waits up to `timeout_ms` for a connection on `listener`; refuses (closes) a peer of
/// another uid.
pub fn accept(listener: RawFd, timeout_ms: i32) -> Result<OwnedFd, SuccessionError> {
    if !sys::poll_readable(listener, timeout_ms)? {
        return Err(SuccessionError::Timeout);
    }
    let conn = match sys::accept(listener) {
        Ok(c) => c,
        Err(Errno::EAGAIN) => return Err(SuccessionError::Timeout),
        Err(e) => return Err(e.into()),
    };
    check_peer(conn.as_raw_fd())?;
    Ok(conn)
}

/// Connects to the listener at `path` and checks that it runs as this process's uid.
pub fn connect(path: &str, timeout_ms: u32) -> Result<OwnedFd, SuccessionError> {
    let conn = sys::seqpacket_connect(path.as_bytes(), timeout_ms)?;
    check_peer(conn.as_raw_fd())?;
    Ok(conn)
}

fn check_peer(fd: RawFd) -> Result<(), SuccessionError> {
    if sys::peer_cred(fd)?.uid != own_uid()? {
        return Err(SuccessionError::ForeignPeer);
    }
    Ok(())
}

/// Sends one message with up to [`sys::MAX_FDS`] descriptors (duplicated into the peer).
pub fn send(fd: RawFd, payload: &[u8], fds: &[RawFd]) -> Result<(), SuccessionError> {
    if fds.len() > sys::MAX_FDS || payload.is_empty() {
        return Err(SuccessionError::Invalid);
    }
    sys::send_with_fds(fd, payload, fds)?;
    Ok(())
}

/// One message received within `timeout_ms`: its length (0: the peer closed) and its
/// descriptors, owned.
pub fn recv(
    fd: RawFd,
    buf: &mut [u8],
    timeout_ms: i32,
) -> Result<(usize, Vec<OwnedFd>), SuccessionError> {
    loop {
        if !sys::poll_readable(fd, timeout_ms)? {
            return Err(SuccessionError::Timeout);
        }
        match sys::recv_with_fds(fd, buf) {
            Ok(None) => return Ok((0, Vec::new())),
            Ok(Some(r)) => {
                if r.flags & (sys::MSG_TRUNC | sys::MSG_CTRUNC) != 0 || r.foreign_control {
                    return Err(SuccessionError::Truncated); // r.fds are closed here
                }
                return Ok((r.len, r.fds));
            }
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_descriptors_and_replaces_the_listener_by_rename() {
        let dir = std::env::temp_dir().join(format!("ioeventd-succ-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("upgrade.sock");
        let path = path.to_str().unwrap();
        let (first, first_ino) = listen(path, 0o600).unwrap();
        let (second, second_ino) = listen(path, 0o600).unwrap(); // renamed over the first
        let client = connect(path, 1000).unwrap();
        assert_eq!(
            accept(first.as_raw_fd(), 0).map(drop),
            Err(SuccessionError::Timeout)
        );
        let server = accept(second.as_raw_fd(), 1000).unwrap();
        let e = sys::eventfd(0, sys::EFD_CLOEXEC).unwrap();
        send(client.as_raw_fd(), b"hello", &[e.as_raw_fd()]).unwrap();
        let mut buf = [0u8; 64];
        let (n, fds) = recv(server.as_raw_fd(), &mut buf, 1000).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        sys::write_u64(e.as_raw_fd(), 3).unwrap();
        assert_eq!(
            sys::read_u64(fds[0].as_raw_fd()).unwrap(),
            3,
            "the same eventfd"
        );
        drop(first);
        unlink_if_own(path, first_ino);
        assert!(
            std::path::Path::new(path).exists(),
            "not the first's to remove"
        );
        unlink_if_own(path, second_ino);
        assert!(!std::path::Path::new(path).exists());
        drop(client);
        assert_eq!(recv(server.as_raw_fd(), &mut buf, 1000).unwrap().0, 0);
        let _ = std::fs::remove_dir(&dir);
    }
}
