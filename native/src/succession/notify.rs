//! sd_notify(3) without libsystemd: one datagram to `$NOTIFY_SOCKET` (a path, or an
//! abstract name written `@name`). The agent says `READY=1` only once every journaled
//! ioeventfd is armed again, so units ordered after it start on a serving agent; a
//! successor says `MAINPID=<pid>` with it, so systemd follows the hand-over.

use crate::sys::Errno;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` to the socket `$NOTIFY_SOCKET` names; `Ok(false)` when it names none.
pub fn notify(state: &str) -> Result<bool, Errno> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(addr) if !addr.is_empty() => {
            send_to(addr.to_str().ok_or(Errno::EINVAL)?, state)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Sends `state` as one datagram to `addr` (`@name`: the abstract namespace).
pub fn send_to(addr: &str, state: &str) -> Result<(), Errno> {
    let io = |e: std::io::Error| Errno::from_io(&e);
    let sock = UnixDatagram::unbound().map_err(io)?;
    let to = match addr.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes()).map_err(io)?
        }
        None => SocketAddr::from_pathname(addr).map_err(io)?,
    };
    sock.send_to_addr(state.as_bytes(), &to).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_one_datagram_to_a_path_and_an_abstract_name() {
        let path = std::env::temp_dir().join(format!("ioeventd-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        send_to(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let _ = std::fs::remove_file(&path);
        use std::os::linux::net::SocketAddrExt;
        let name = format!("ioeventd-notify-{}", std::process::id());
        let abs = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        send_to(&format!("@{name}"), "MAINPID=1\nREADY=1").unwrap();
        let n = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MAINPID=1\nREADY=1");
    }
}
