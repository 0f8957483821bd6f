//! A vCPU: `KVM_RUN` and why it returned (read from the shared `kvm_run` mapping), the
//! value an MMIO read returns, and the general and segment registers.

use super::uapi::{
    Regs, Sregs, KVM_EXIT_HLT, KVM_EXIT_IO, KVM_EXIT_MMIO, KVM_GET_REGS, KVM_GET_SREGS, KVM_RUN,
    KVM_SET_REGS, KVM_SET_SREGS, RUN_EXIT_REASON, RUN_EXIT_UNION,
};
use super::{ioctl_int, SlotMemory};
use crate::sys::mmap::Mmap;
use crate::sys::{check, ffi, Errno, SysResult};
use std::os::fd::{AsRawFd, OwnedFd};

/// Why `KVM_RUN` returned, read from the `kvm_run` mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuExit {
    /// `KVM_EXIT_HLT`.
    Hlt,
    /// `KVM_EXIT_MMIO`: an access outside every memory slot (and every ioeventfd).
    Mmio {
        /// Guest-physical address.
        addr: u64,
        /// Bytes (1..=8).
        len: u32,
        /// The value written (little-endian, `len` bytes), 0 for a read.
        data: u64,
        /// A write (else a read, whose value the VMM puts back with [`Vcpu::set_mmio_read`]).
        is_write: bool,
    },
    /// `KVM_EXIT_IO`: a port access.
    Io {
        /// The port.
        port: u16,
        /// Bytes per access.
        size: u8,
        /// `out` (else `in`).
        out: bool,
    },
    /// Any other reason (`KVM_EXIT_SHUTDOWN`, `FAIL_ENTRY`, `INTERNAL_ERROR`, ...), with the
    /// first word of the exit union (the hardware reason or the suberror).
    Other {
        /// `exit_reason`.
        reason: u32,
        /// The first 8 bytes of the exit union.
        detail: u64,
    },
}

/// A vCPU and its `kvm_run` mapping (unmapped before the descriptor closes; the VM's slot
/// memory is released only after it).
pub struct Vcpu {
    pub(super) run: Mmap,
    pub(super) fd: OwnedFd,
    pub(super) _memory: SlotMemory,
}

impl Vcpu {
    /// Reads `N` bytes at `offset` of the `kvm_run` mapping.
    fn run_bytes<const N: usize>(&self, offset: usize) -> [u8; N] {
        assert!(offset + N <= self.run.len(), "kvm_run read out of bounds");
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `offset + i < run.len()` (asserted above): inside the live shared
            // mapping of `kvm_run`, which the kernel writes only while KVM_RUN is in
            // progress on this vCPU — never during this call, which needs `&self` while
            // `run` needs `&mut self`. Volatile: the kernel is the writer.
            *b = unsafe { self.run.as_ptr().add(offset + i).read_volatile() };
        }
        out
    }

    /// `KVM_RUN` until the next exit to user space (retried on `EINTR`), and why.
    pub fn run(&mut self) -> SysResult<VcpuExit> {
        loop {
            match ioctl_int(self.fd.as_raw_fd(), KVM_RUN, 0) {
                Ok(_) => break,
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
                Err(e) => return Err(e),
            }
        }
        let reason = u32::from_ne_bytes(self.run_bytes::<4>(RUN_EXIT_REASON));
        Ok(match reason {
            KVM_EXIT_HLT => VcpuExit::Hlt,
            KVM_EXIT_MMIO => {
                // struct { __u64 phys_addr; __u8 data[8]; __u32 len; __u8 is_write; }
                let addr = u64::from_ne_bytes(self.run_bytes::<8>(RUN_EXIT_UNION));
                let raw = self.run_bytes::<8>(RUN_EXIT_UNION + 8);
                let len = u32::from_ne_bytes(self.run_bytes::<4>(RUN_EXIT_UNION + 16)).min(8);
                let is_write = self.run_bytes::<1>(RUN_EXIT_UNION + 20)[0] != 0;
                let mut bytes = [0u8; 8];
                bytes[..len as usize].copy_from_slice(&raw[..len as usize]);
                VcpuExit::Mmio {
                    addr,
                    len,
                    data: if is_write {
                        u64::from_le_bytes(bytes)
                    } else {
                        0
                    },
                    is_write,
                }
            }
            KVM_EXIT_IO => {
                // struct { __u8 direction; __u8 size; __u16 port; __u32 count; __u64 data_offset; }
                let head = self.run_bytes::<4>(RUN_EXIT_UNION);
                VcpuExit::Io {
                    out: head[0] == 1,
                    size: head[1],
                    port: u16::from_ne_bytes([head[2], head[3]]),
                }
            }
            reason => VcpuExit::Other {
                reason,
                detail: u64::from_ne_bytes(self.run_bytes::<8>(RUN_EXIT_UNION)),
            },
        })
    }

    /// The value an MMIO read returns to the guest (`data` of the `mmio` exit block), to be
    /// set before the next [`Vcpu::run`].
    pub fn set_mmio_read(&mut self, value: u64) {
        let bytes = value.to_le_bytes();
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: `RUN_EXIT_UNION + 8 + i` is within the mapping (its length was checked
            // at creation to cover the exit union); no KVM_RUN is in progress (`&mut self`).
            unsafe {
                self.run
                    .as_ptr()
                    .add(RUN_EXIT_UNION + 8 + i)
                    .write_volatile(*b)
            };
        }
    }

    /// `KVM_GET_REGS`.
    pub fn regs(&self) -> SysResult<Regs> {
        let mut r = Regs::default();
        // SAFETY: the kernel writes one `struct kvm_regs` (144 bytes, size asserted) into
        // the live local `r`.
        check(unsafe { ffi::ioctl(self.fd.as_raw_fd(), KVM_GET_REGS, &mut r as *mut Regs) })?;
        Ok(r)
    }

    /// `KVM_SET_REGS`.
    pub fn set_regs(&self, r: &Regs) -> SysResult<()> {
        // SAFETY: the kernel reads one `struct kvm_regs` from `r`, live for the call.
        check(unsafe { ffi::ioctl(self.fd.as_raw_fd(), KVM_SET_REGS, r as *const Regs) })
            .map(|_| ())
    }

    /// `KVM_GET_SREGS`.
    pub fn sregs(&self) -> SysResult<Sregs> {
        let mut s = Sregs::default();
        // SAFETY: the kernel writes one `struct kvm_sregs` (312 bytes, size asserted) into
        // the live local `s`.
        check(unsafe { ffi::ioctl(self.fd.as_raw_fd(), KVM_GET_SREGS, &mut s as *mut Sregs) })?;
        Ok(s)
    }

    /// `KVM_SET_SREGS`.
    pub fn set_sregs(&self, s: &Sregs) -> SysResult<()> {
        // SAFETY: the kernel reads one `struct kvm_sregs` from `s`, live for the call.
        check(unsafe { ffi::ioctl(self.fd.as_raw_fd(), KVM_SET_SREGS, s as *const Sregs) })
            .map(|_| ())
    }
}
