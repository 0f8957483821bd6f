//! The KVM ioctls a minimal VMM needs (`<linux/kvm.h>`, x86_64): a VM with memory slots and
//! `KVM_IOEVENTFD`s, one vCPU with its `kvm_run` mapping, registers and segment registers;
//! and the guest memory those slots are backed by (anonymous RAM, or a shared mapping of a
//! file such as a BAR's `resourceN`), with bounds-checked volatile accesses.
//!
//! Used by `ioeventd-kvm-vmm` (tests and benchmarks), never by the engine.

mod guest_memory;
mod uapi;
mod vcpu;
mod vm;

pub use guest_memory::GuestMemory;
pub use uapi::{
    DTable, Regs, Segment, Sregs, KVM_API_VERSION, KVM_CAP_IOEVENTFD, KVM_EXIT_FAIL_ENTRY,
    KVM_EXIT_HLT, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_IO, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN,
};
pub use vcpu::{Vcpu, VcpuExit};
pub use vm::Vm;

use super::{check, ffi, new_fd, open_rw, Errno, SysResult};
use std::ffi::{c_int, c_ulong};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use uapi::{KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_GET_API_VERSION, KVM_GET_VCPU_MMAP_SIZE};

/// The memory of a VM's slots, shared with its vCPUs: a vCPU descriptor keeps the kernel's
/// VM alive too, so each vCPU holds this list until its own descriptor is closed.
type SlotMemory = Arc<Mutex<Vec<Arc<GuestMemory>>>>;

/// `ioctl(fd, request, arg)` with an integer argument.
fn ioctl_int(fd: RawFd, request: c_ulong, arg: c_ulong) -> SysResult<c_int> {
    // SAFETY: the requests passed here (API version, create VM/vCPU, check extension, vCPU
    // mmap size, run) take an integer argument or none, not a pointer: nothing in this
    // process is read or written by the kernel.
    check(unsafe { ffi::ioctl(fd, request, arg) })
}

/// `/dev/kvm`, opened read-write and close-on-exec.
pub struct Kvm {
    fd: OwnedFd,
}

impl Kvm {
    /// Opens `/dev/kvm` and checks the API version (`EPROTO`-like `EINVAL` when it is not
    /// [`KVM_API_VERSION`]).
    pub fn open() -> SysResult<Kvm> {
        Kvm::open_path(Path::new("/dev/kvm"))
    }

    /// Opens a KVM device node at `path`.
    pub fn open_path(path: &Path) -> SysResult<Kvm> {
        let kvm = Kvm { fd: open_rw(path)? };
        if kvm.api_version()? != KVM_API_VERSION {
            return Err(Errno::EINVAL);
        }
        Ok(kvm)
    }

    /// `KVM_GET_API_VERSION`.
    pub fn api_version(&self) -> SysResult<c_int> {
        ioctl_int(self.fd.as_raw_fd(), KVM_GET_API_VERSION, 0)
    }

    /// `KVM_CHECK_EXTENSION(cap)`: 0 when absent, else a capability-specific value.
    pub fn check_extension(&self, cap: u32) -> SysResult<c_int> {
        ioctl_int(self.fd.as_raw_fd(), KVM_CHECK_EXTENSION, c_ulong::from(cap))
    }

    /// `KVM_GET_VCPU_MMAP_SIZE`: the length of a vCPU's `kvm_run` mapping.
    pub fn vcpu_mmap_size(&self) -> SysResult<usize> {
        ioctl_int(self.fd.as_raw_fd(), KVM_GET_VCPU_MMAP_SIZE, 0).map(|n| n as usize)
    }

    /// `KVM_CREATE_VM(0)`: a new VM without memory or vCPUs.
    pub fn create_vm(&self) -> SysResult<Vm> {
        // SAFETY: integer argument (machine type 0); the result is a new descriptor or -1.
        let fd = new_fd(unsafe { ffi::ioctl(self.fd.as_raw_fd(), KVM_CREATE_VM, 0 as c_ulong) })?;
        Ok(Vm {
            fd,
            run_size: self.vcpu_mmap_size()?,
            memory: SlotMemory::default(),
        })
    }
}
