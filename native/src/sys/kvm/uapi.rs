//! The parts of `<linux/kvm.h>` (x86_64) this VMM uses: ioctl request numbers, capability and
//! exit-reason numbers, the `kvm_run` offsets read, and the `#[repr(C)]` structs passed to the
//! kernel, their sizes asserted at compile time.

use std::ffi::{c_int, c_ulong};

pub(super) const KVM_GET_API_VERSION: c_ulong = 0xAE00;
pub(super) const KVM_CREATE_VM: c_ulong = 0xAE01;
pub(super) const KVM_CHECK_EXTENSION: c_ulong = 0xAE03;
pub(super) const KVM_GET_VCPU_MMAP_SIZE: c_ulong = 0xAE04;
pub(super) const KVM_CREATE_VCPU: c_ulong = 0xAE41;
pub(super) const KVM_SET_USER_MEMORY_REGION: c_ulong = 0x4020_AE46;
pub(super) const KVM_IOEVENTFD: c_ulong = 0x4040_AE79;
pub(super) const KVM_RUN: c_ulong = 0xAE80;
pub(super) const KVM_GET_REGS: c_ulong = 0x8090_AE81;
pub(super) const KVM_SET_REGS: c_ulong = 0x4090_AE82;
pub(super) const KVM_GET_SREGS: c_ulong = 0x8138_AE83;
pub(super) const KVM_SET_SREGS: c_ulong = 0x4138_AE84;

/// The only KVM API version (`KVM_GET_API_VERSION`).
pub const KVM_API_VERSION: c_int = 12;
/// `KVM_CAP_IOEVENTFD`.
pub const KVM_CAP_IOEVENTFD: u32 = 36;
/// `KVM_IOEVENTFD_FLAG_DATAMATCH`.
pub(super) const KVM_IOEVENTFD_FLAG_DATAMATCH: u32 = 1;
/// `KVM_IOEVENTFD_FLAG_DEASSIGN`.
pub(super) const KVM_IOEVENTFD_FLAG_DEASSIGN: u32 = 4;

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
pub(super) const RUN_EXIT_REASON: usize = 8;
/// Offset of the exit union (`mmio`, `io`, `internal`, ...) in `struct kvm_run`.
pub(super) const RUN_EXIT_UNION: usize = 32;

/// `struct kvm_userspace_memory_region`.
#[repr(C)]
pub(super) struct UserspaceMemoryRegion {
    pub(super) slot: u32,
    pub(super) flags: u32,
    pub(super) guest_phys_addr: u64,
    pub(super) memory_size: u64,
    pub(super) userspace_addr: u64,
}

/// `struct kvm_ioeventfd`.
#[repr(C)]
pub(super) struct IoeventfdRaw {
    pub(super) datamatch: u64,
    pub(super) addr: u64,
    pub(super) len: u32,
    pub(super) fd: i32,
    pub(super) flags: u32,
    pub(super) pad: [u8; 36],
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
