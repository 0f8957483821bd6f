//! The KVM ioctls a minimal VMM needs (`<linux/kvm.h>`, x86_64): a VM with memory slots and
//! `KVM_IOEVENTFD`s, one vCPU with its `kvm_run` mapping, registers and segment registers;
//! and the guest memory those slots are backed by (anonymous RAM, or a shared mapping of a
//! file such as a BAR's `resourceN`), with bounds-checked volatile accesses.
//!
//! Used by `ioeventd-kvm-vmm` (tests and benchmarks), never by the engine.

use super::ffi;
use super::mmap::Mmap;
use super::{check, new_fd, open_rw, Errno, SysResult};
use std::ffi::{c_int, c_ulong};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

const KVM_GET_API_VERSION: c_ulong = 0xAE00;
const KVM_CREATE_VM: c_ulong = 0xAE01;
const KVM_CHECK_EXTENSION: c_ulong = 0xAE03;
const KVM_GET_VCPU_MMAP_SIZE: c_ulong = 0xAE04;
const KVM_CREATE_VCPU: c_ulong = 0xAE41;
const KVM_SET_USER_MEMORY_REGION: c_ulong = 0x4020_AE46;
const KVM_IOEVENTFD: c_ulong = 0x4040_AE79;
const KVM_RUN: c_ulong = 0xAE80;
const KVM_GET_REGS: c_ulong = 0x8090_AE81;
const KVM_SET_REGS: c_ulong = 0x4090_AE82;
const KVM_GET_SREGS: c_ulong = 0x8138_AE83;
const KVM_SET_SREGS: c_ulong = 0x4138_AE84;

/// The only KVM API version (`KVM_GET_API_VERSION`).
pub const KVM_API_VERSION: c_int = 12;
/// `KVM_CAP_IOEVENTFD`.
pub const KVM_CAP_IOEVENTFD: u32 = 36;
/// `KVM_IOEVENTFD_FLAG_DATAMATCH`.
const KVM_IOEVENTFD_FLAG_DATAMATCH: u32 = 1;
/// `KVM_IOEVENTFD_FLAG_DEASSIGN`.
const KVM_IOEVENTFD_FLAG_DEASSIGN: u32 = 4;

/// `KVM_EXIT_IO`.
pub const KVM_EXIT_IO: u32 = 2;
/// `KVM_EXIT_HLT`.
pub const KVM_EXIT_HLT: u32 = 5;
/// `KVM_EXIT_MMIO`.
pub const KVM_EXIT_MMIO: u32 = 6;
/// `KVM_EXIT_SHUTDOWN`.
pub const KVM_EXIT_SHUTDOWN: u32 = 8;
/// `KVM_EXIT_FAIL_ENTRY`.
pub const KVM_EXIT_FAIL_ENTRY: u32 = 9;
/// `KVM_EXIT_INTERNAL_ERROR`.
pub const KVM_EXIT_INTERNAL_ERROR: u32 = 17;

/// Offset of `exit_reason` in `struct kvm_run`.
const RUN_EXIT_REASON: usize = 8;
/// Offset of the exit union (`mmio`, `io`, `internal`, ...) in `struct kvm_run`.
const RUN_EXIT_UNION: usize = 32;

/// `struct kvm_userspace_memory_region`.
#[repr(C)]
struct UserspaceMemoryRegion {
    slot: u32,
    flags: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
}

/// `struct kvm_ioeventfd`.
#[repr(C)]
struct IoeventfdRaw {
    datamatch: u64,
    addr: u64,
    len: u32,
    fd: i32,
    flags: u32,
    pad: [u8; 36],
}

const _: () = assert!(std::mem::size_of::<UserspaceMemoryRegion>() == 32);
const _: () = assert!(std::mem::size_of::<IoeventfdRaw>() == 64);

/// `struct kvm_regs` (x86_64).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

/// `struct kvm_segment`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct Segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    pub type_: u8,
    pub present: u8,
    pub dpl: u8,
    pub db: u8,
    pub s: u8,
    pub l: u8,
    pub g: u8,
    pub avl: u8,
    pub unusable: u8,
    pub padding: u8,
}

/// `struct kvm_dtable`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct DTable {
    pub base: u64,
    pub limit: u16,
    pub padding: [u16; 3],
}

/// `struct kvm_sregs` (x86_64).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct Sregs {
    pub cs: Segment,
    pub ds: Segment,
    pub es: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ss: Segment,
    pub tr: Segment,
    pub ldt: Segment,
    pub gdt: DTable,
    pub idt: DTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub apic_base: u64,
    pub interrupt_bitmap: [u64; 4],
}

const _: () = assert!(std::mem::size_of::<Regs>() == 144);
const _: () = assert!(std::mem::size_of::<Segment>() == 24);
const _: () = assert!(std::mem::size_of::<Sregs>() == 312);

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

/// A KVM VM. It keeps every [`GuestMemory`] given to it alive until the VM descriptor is
/// closed (fields drop in declaration order: the descriptor first), so the kernel never
/// maps guest memory onto an address this process has unmapped and reused.
pub struct Vm {
    fd: OwnedFd,
    run_size: usize,
    memory: SlotMemory,
}

/// The memory of a VM's slots, shared with its vCPUs: a vCPU descriptor keeps the kernel's
/// VM alive too, so each vCPU holds this list until its own descriptor is closed.
type SlotMemory = Arc<Mutex<Vec<Arc<GuestMemory>>>>;

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
    run: Mmap,
    fd: OwnedFd,
    _memory: SlotMemory,
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

const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_PRIVATE: c_int = 2;
const MAP_ANONYMOUS: c_int = 0x20;

enum Backing {
    /// An anonymous private mapping we created (`ptr`, `len` of `GuestMemory`).
    Anonymous,
    /// A shared mapping of a file.
    File(#[allow(dead_code)] Mmap),
}

/// Memory a VM's slot is backed by: anonymous RAM, or a shared mapping of a file (a BAR's
/// `resourceN`: the guest then sees the bytes the agent writes into that file). The guest
/// and other threads may write it at any time, so every access is volatile and
/// bounds-checked; nothing hands out references into it.
pub struct GuestMemory {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
}

// SAFETY: the memory is plain shared memory accessed only through volatile, bounds-checked
// loads and stores of plain integers; the raw pointer is only an address.
unsafe impl Send for GuestMemory {}
// SAFETY: as above: concurrent volatile accesses of integers race only in the way device
// registers do (the value read is one of the values written), never in a way Rust relies on.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// `len` bytes of zeroed anonymous memory (`len` a non-zero multiple of 4096).
    pub fn anonymous(len: usize) -> SysResult<GuestMemory> {
        if len == 0 || !len.is_multiple_of(4096) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: a fresh private anonymous mapping chosen by the kernel (addr NULL, fd -1);
        // no existing memory is affected. The result is checked against MAP_FAILED.
        let p = unsafe {
            ffi::mmap(
                std::ptr::null_mut(),
                len,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p as isize == -1 {
            return Err(Errno::last());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(Errno::ENOMEM)?;
        Ok(GuestMemory {
            ptr,
            len,
            backing: Backing::Anonymous,
        })
    }

    /// A shared read-write mapping of the first `len` bytes of the file `fd` (`len` a
    /// non-zero multiple of 4096).
    pub fn file(fd: RawFd, len: usize) -> SysResult<GuestMemory> {
        if len == 0 || !len.is_multiple_of(4096) {
            return Err(Errno::EINVAL);
        }
        let map = Mmap::map_shared(fd, len)?;
        let ptr = NonNull::new(map.as_ptr()).ok_or(Errno::ENOMEM)?;
        Ok(GuestMemory {
            ptr,
            len,
            backing: Backing::File(map),
        })
    }

    /// Base address (page aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (empty memory is refused).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `[offset, offset + width)` is inside, and naturally aligned for `width`.
    fn check(&self, offset: usize, width: usize) -> SysResult<()> {
        let aligned = matches!(width, 1 | 2 | 4 | 8) && offset.is_multiple_of(width);
        if !aligned || offset.checked_add(width).is_none_or(|end| end > self.len) {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// One volatile, naturally aligned store of `width` (1, 2, 4, 8) bytes of `value`
    /// (truncated, native = little endian) at `offset`. `EINVAL` when out of bounds or
    /// misaligned.
    #[inline]
    pub fn store(&self, offset: usize, width: usize, value: u64) -> SysResult<()> {
        self.check(offset, width)?;
        // SAFETY: `[offset, offset + width)` is inside the live mapping and naturally aligned
        // (checked above), so the pointer is valid and aligned for the type stored.
        unsafe {
            let p = self.ptr.as_ptr().add(offset);
            match width {
                1 => p.write_volatile(value as u8),
                2 => p.cast::<u16>().write_volatile(value as u16),
                4 => p.cast::<u32>().write_volatile(value as u32),
                _ => p.cast::<u64>().write_volatile(value),
            }
        }
        Ok(())
    }

    /// One volatile, naturally aligned load of `width` bytes at `offset`.
    #[inline]
    pub fn load(&self, offset: usize, width: usize) -> SysResult<u64> {
        self.check(offset, width)?;
        // SAFETY: as in `store`: inside the live mapping and naturally aligned.
        Ok(unsafe {
            let p = self.ptr.as_ptr().add(offset);
            match width {
                1 => u64::from(p.read_volatile()),
                2 => u64::from(p.cast::<u16>().read_volatile()),
                4 => u64::from(p.cast::<u32>().read_volatile()),
                _ => p.cast::<u64>().read_volatile(),
            }
        })
    }

    /// Copies `bytes` to `offset` (byte by byte, volatile): loading guest code.
    pub fn write_bytes(&self, offset: usize, bytes: &[u8]) -> SysResult<()> {
        if offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > self.len)
        {
            return Err(Errno::EINVAL);
        }
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: `offset + i < len` (checked above): inside the live mapping.
            unsafe { self.ptr.as_ptr().add(offset + i).write_volatile(*b) };
        }
        Ok(())
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        if let Backing::Anonymous = self.backing {
            // SAFETY: `ptr`/`len` describe the anonymous mapping we created and still own;
            // the VM holding it (see `Vm`) has closed its descriptor before dropping it.
            unsafe { ffi::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
        // A file mapping is unmapped by its `Mmap`.
    }
}
