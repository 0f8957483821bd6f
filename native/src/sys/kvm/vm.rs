//! A KVM VM: its memory slots and its `KVM_IOEVENTFD`s, and the vCPUs it creates.

use super::uapi::{
    IoeventfdRaw, UserspaceMemoryRegion, KVM_CHECK_EXTENSION, KVM_CREATE_VCPU, KVM_IOEVENTFD,
    KVM_IOEVENTFD_FLAG_DATAMATCH, KVM_IOEVENTFD_FLAG_DEASSIGN, KVM_SET_USER_MEMORY_REGION,
    RUN_EXIT_UNION,
};
use super::{ioctl_int, GuestMemory, SlotMemory, Vcpu};
use crate::sys::mmap::Mmap;
use crate::sys::{check, ffi, new_fd, Errno, SysResult};
use std::ffi::{c_int, c_ulong};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// A KVM VM. It keeps every [`GuestMemory`] given to it alive until the VM descriptor is
/// closed (fields drop in declaration order: the descriptor first), so the kernel never
/// maps guest memory onto an address this process has unmapped and reused.
pub struct Vm {
    pub(super) fd: OwnedFd,
    pub(super) run_size: usize,
    pub(super) memory: SlotMemory,
}

impl Vm {
    /// The VM descriptor.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `KVM_CHECK_EXTENSION(cap)` on the VM.
    pub fn check_extension(&self, cap: u32) -> SysResult<c_int> {
        ioctl_int(self.fd.as_raw_fd(), KVM_CHECK_EXTENSION, c_ulong::from(cap))
    }

    /// `KVM_SET_USER_MEMORY_REGION`: guest-physical `[gpa, gpa + memory.len())` is backed by
    /// `memory` as memory slot `slot`. `memory`'s length must be a multiple of the page size
    /// and `gpa` page aligned (else `EINVAL` from the kernel).
    pub fn set_memory(&mut self, slot: u32, gpa: u64, memory: Arc<GuestMemory>) -> SysResult<()> {
        let region = UserspaceMemoryRegion {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: memory.len() as u64,
            userspace_addr: memory.as_ptr() as u64,
        };
        // SAFETY: the kernel reads one `struct kvm_userspace_memory_region` from the live
        // local `region`. The host range it names is a mapping `memory` owns; `memory` is
        // pushed into `self.memory` below, which the VM and each of its vCPUs hold until
        // their descriptors are closed (see `Vm`), so the guest can only reach that mapping.
        check(unsafe {
            ffi::ioctl(
                self.fd.as_raw_fd(),
                KVM_SET_USER_MEMORY_REGION,
                &region as *const UserspaceMemoryRegion,
            )
        })?;
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(memory);
        Ok(())
    }

    /// `KVM_IOEVENTFD`: a guest MMIO write of `len` bytes (0, 1, 2, 4 or 8) at guest-physical
    /// `addr` — with `datamatch`, only of that value — signals `efd` inside the kernel; the
    /// vCPU does not exit. `EEXIST` for an exact duplicate.
    pub fn ioeventfd(
        &self,
        addr: u64,
        len: u32,
        efd: RawFd,
        datamatch: Option<u64>,
    ) -> SysResult<()> {
        self.ioeventfd_raw(addr, len, efd, datamatch, false)
    }

    /// `KVM_IOEVENTFD` with `DEASSIGN`: removes the entry of exactly that key (`ENOENT` if none).
    pub fn ioeventfd_deassign(
        &self,
        addr: u64,
        len: u32,
        efd: RawFd,
        datamatch: Option<u64>,
    ) -> SysResult<()> {
        self.ioeventfd_raw(addr, len, efd, datamatch, true)
    }

    fn ioeventfd_raw(
        &self,
        addr: u64,
        len: u32,
        efd: RawFd,
        datamatch: Option<u64>,
        deassign: bool,
    ) -> SysResult<()> {
        let mut flags = if datamatch.is_some() {
            KVM_IOEVENTFD_FLAG_DATAMATCH
        } else {
            0
        };
        if deassign {
            flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
        }
        let req = IoeventfdRaw {
            datamatch: datamatch.unwrap_or(0),
            addr,
            len,
            fd: efd,
            flags,
            pad: [0; 36],
        };
        // SAFETY: the kernel reads one `struct kvm_ioeventfd` (64 bytes) from the live local
        // `req` and writes nothing back; it takes its own reference to the eventfd.
        check(unsafe {
            ffi::ioctl(
                self.fd.as_raw_fd(),
                KVM_IOEVENTFD,
                &req as *const IoeventfdRaw,
            )
        })
        .map(|_| ())
    }

    /// `KVM_CREATE_VCPU(id)`, with its `kvm_run` mapping.
    pub fn create_vcpu(&self, id: u32) -> SysResult<Vcpu> {
        // SAFETY: integer argument (the vCPU id); the result is a new descriptor or -1.
        let fd =
            new_fd(unsafe { ffi::ioctl(self.fd.as_raw_fd(), KVM_CREATE_VCPU, c_ulong::from(id)) })?;
        let run = Mmap::map_shared(fd.as_raw_fd(), self.run_size)?;
        if run.len() < RUN_EXIT_UNION + 256 {
            return Err(Errno::EINVAL);
        }
        Ok(Vcpu {
            run,
            fd,
            _memory: self.memory.clone(),
        })
    }
}
