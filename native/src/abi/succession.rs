//! The succession channel (`succession/`) and the engine's hand-over calls
//! (`engine/succession.rs`): what a successor agent and its predecessor use to hand the
//! data plane over (README.md, "Upgrades"). service/native/succession.ts is the binding.

use super::{ret_i32, ret_i64};
use crate::engine::Adoption;
use crate::succession;
use crate::sys::{self, Errno};
use std::os::fd::{IntoRawFd, RawFd};

fn utf8<'a>(ptr: *const u8) -> Result<&'a str, Errno> {
    std::str::from_utf8(sys::abi_cstr(ptr).ok_or(Errno::EFAULT)?).map_err(|_| Errno::EINVAL)
}

/// Listens at `path` (mode `mode`), bound under a private name and renamed over it: the
/// listening descriptor. `EEXIST`: a file that is not a socket is there.
#[no_mangle]
pub extern "C" fn ioeventd_succession_listen(path: *const u8, mode: u32) -> i32 {
    ret_i32((|| {
        Ok(succession::listen(utf8(path)?, mode)?.0.into_raw_fd())
    })())
}

/// A connection within `timeout_ms` (`EAGAIN` past it); `EPERM` a peer of another uid.
#[no_mangle]
pub extern "C" fn ioeventd_succession_accept(listener: i32, timeout_ms: i32) -> i32 {
    ret_i32((|| {
        Ok(succession::accept(listener, timeout_ms)?.into_raw_fd())
    })())
}

/// Connects to the agent listening at `path`; `EPERM` when it runs as another uid.
#[no_mangle]
pub extern "C" fn ioeventd_succession_connect(path: *const u8, timeout_ms: u32) -> i32 {
    ret_i32((|| {
        Ok(succession::connect(utf8(path)?, timeout_ms)?.into_raw_fd())
    })())
}

/// Sends `len` bytes with `nfds` (≤ 8) descriptors (`fds`: `u32` each).
#[no_mangle]
pub extern "C" fn ioeventd_succession_send(
    fd: i32,
    payload: *const u8,
    len: u64,
    fds: *const u32,
    nfds: u64,
) -> i32 {
    ret_i32((|| {
        let payload = sys::abi_bytes(payload, len).ok_or(Errno::EFAULT)?;
        let fds = sys::abi_slice_u32(fds, nfds).ok_or(Errno::EFAULT)?;
        let raw: Vec<RawFd> = fds.iter().map(|&f| f as RawFd).collect();
        succession::send(fd, payload, &raw)?;
        Ok(0)
    })())
}

/// One message within `timeout_ms`: its length (0: the peer closed); its descriptors go to
/// `fds` (`fds_cap` ≥ 8 words), their count to `nfds[0]`. `EAGAIN` past the timeout,
/// `EOVERFLOW` truncated (its descriptors closed).
#[no_mangle]
pub extern "C" fn ioeventd_succession_recv(
    fd: i32,
    buf: *mut u8,
    cap: u64,
    fds: *mut u64,
    fds_cap: u64,
    nfds: *mut u64,
    timeout_ms: i32,
) -> i64 {
    ret_i64((|| {
        let buf = sys::abi_bytes_mut(buf, cap).ok_or(Errno::EFAULT)?;
        let out = sys::abi_slice_mut(fds, fds_cap).ok_or(Errno::EFAULT)?;
        let count = sys::abi_slice_mut(nfds, 1).ok_or(Errno::EFAULT)?;
        if out.len() < sys::MAX_FDS {
            return Err(Errno::EINVAL);
        }
        let (n, received) = succession::recv(fd, buf, timeout_ms)?;
        count[0] = received.len() as u64;
        for (slot, f) in out.iter_mut().zip(received) {
            *slot = f.into_raw_fd() as u64;
        }
        Ok(n as i64)
    })())
}

/// Duplicates of what registration `id` is served with: `out[0]` its eventfd, `out[1]` the
/// VFIO device of a kernel-served one, else -1 (`i64`). `ENOENT` unknown id.
#[no_mangle]
pub extern "C" fn ioeventd_registration_fds(engine: u64, id: u64, out: *mut u64) -> i32 {
    ret_i32((|| {
        let e = crate::engine(engine)?;
        let out = sys::abi_slice_mut(out, 2).ok_or(Errno::EFAULT)?;
        let (efd, device) = e.registration_fds(id)?;
        out[0] = efd.into_raw_fd() as u64;
        out[1] = device.map_or(-1i64, |d| i64::from(d.into_raw_fd())) as u64;
        Ok(0)
    })())
}

/// From now on the engine's kernel entries stay assigned when it drops them (a successor
/// adopted them): how many there are.
#[no_mangle]
pub extern "C" fn ioeventd_engine_leave_kernel(engine: u64) -> i64 {
    ret_i64((|| {
        Ok(crate::engine(engine)?.leave_kernel_entries()? as i64)
    })())
}

/// Adopts the kernel entry `(region, offset, width, data) ← efd` of VFIO device `vfio_fd`
/// that a predecessor left assigned, without an ioctl: the registration id. The engine owns
/// `efd` on success. Errors as `ioeventd_register_vfio`'s checks.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn ioeventd_adopt_kernel(
    engine: u64,
    vfio_fd: i32,
    region: u32,
    offset: u64,
    width: u32,
    data: u64,
    efd: i32,
    pid: i32,
    pid_start: u64,
) -> i64 {
    ret_i64((|| {
        let e = crate::engine(engine)?;
        let id = e.adopt_kernel(&Adoption {
            device: vfio_fd,
            region,
            offset,
            width,
            data,
            efd,
            pid,
            pid_start,
        })?;
        Ok(id as i64)
    })())
}

/// sd_notify(3): `state` to `$NOTIFY_SOCKET`; 1 sent, 0 no such socket configured.
#[no_mangle]
pub extern "C" fn ioeventd_sd_notify(state: *const u8) -> i32 {
    ret_i32((|| {
        Ok(i32::from(succession::notify::notify(utf8(state)?)?))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn refuses_bad_pointers() {
        assert_eq!(ioeventd_succession_listen(std::ptr::null(), 0o600), -14);
        let e = sys::eventfd(0, sys::EFD_CLOEXEC).unwrap();
        assert_eq!(
            ioeventd_succession_send(e.as_raw_fd(), std::ptr::null(), 4, std::ptr::null(), 0),
            -14
        );
    }
}
