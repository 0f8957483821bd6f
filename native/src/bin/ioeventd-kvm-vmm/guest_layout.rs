//! Where everything is in the guest: its RAM (code, control words, latency samples), the
//! doorbell page outside every memory slot, the BAR window, and the seven doorbells with the
//! BAR register each one's write belongs in.

/// Guest RAM: code, control words, the latency samples.
pub(crate) const RAM_GPA: u64 = 0;
pub(crate) const RAM_SIZE: usize = 0x20000;
pub(crate) const CODE_GPA: u64 = 0x1000;
/// Control words at these guest-physical addresses (FS base 0).
pub(crate) const PROGRESS: u16 = 0x0800;
pub(crate) const STOP: u16 = 0x0804;
pub(crate) const TSC_START: u16 = 0x0810;
pub(crate) const TSC_END: u16 = 0x0818;
pub(crate) const QWORD: u16 = 0x0820;
/// Latency samples: GS base 0x10000, 64 KiB ring of u32 TSC differences.
pub(crate) const SAMPLES_GPA: u64 = 0x10000;
pub(crate) const SAMPLE_SLOTS: usize = 0x10000 / 4;
/// The doorbell page: outside every memory slot, so a store there is MMIO.
pub(crate) const DOORBELL_GPA: u64 = 0x30000;
/// In `ram` mode the doorbell segment points here instead (inside guest RAM).
pub(crate) const RAM_DOORBELL_GPA: u64 = 0x9000;
/// The BAR window: a memory slot backed by the BAR file's first 64 KiB.
pub(crate) const BAR_GPA: u64 = 0x100000;
pub(crate) const BAR_WINDOW: usize = 0x10000;
/// Doorbell offset `d` in its page ⇔ register `REG_BASE + d` in the BAR.
pub(crate) const REG_BASE: u64 = 0x1000;

/// A doorbell: a guest store of `width` bytes of `value` at `DOORBELL_GPA + offset`, which
/// should become the write of `value` at BAR offset `REG_BASE + offset`.
#[derive(Clone, Copy)]
pub(crate) struct Doorbell {
    pub(crate) name: &'static str,
    pub(crate) offset: u16,
    pub(crate) width: u32,
    pub(crate) value: u64,
    pub(crate) datamatch: bool,
}

impl Doorbell {
    pub(crate) fn gpa(&self, base: u64) -> u64 {
        base + u64::from(self.offset)
    }
    pub(crate) fn bar_offset(&self) -> u64 {
        REG_BASE + u64::from(self.offset)
    }
}

pub(crate) const DOORBELLS: [Doorbell; 7] = [
    Doorbell {
        name: "w1",
        offset: 0x010,
        width: 1,
        value: 0xa5,
        datamatch: false,
    },
    Doorbell {
        name: "w2",
        offset: 0x020,
        width: 2,
        value: 0xbeef,
        datamatch: false,
    },
    Doorbell {
        name: "w4",
        offset: 0x040,
        width: 4,
        value: 0xdead_beef,
        datamatch: false,
    },
    Doorbell {
        name: "w8",
        offset: 0x080,
        width: 8,
        value: 0x0123_4567_89ab_cdef,
        datamatch: false,
    },
    Doorbell {
        name: "dm_a",
        offset: 0x100,
        width: 4,
        value: 0x1111_1111,
        datamatch: true,
    },
    Doorbell {
        name: "dm_b",
        offset: 0x100,
        width: 4,
        value: 0x2222_2222,
        datamatch: true,
    },
    Doorbell {
        name: "final",
        offset: 0x200,
        width: 4,
        value: 0xf1a1_f1a1,
        datamatch: false,
    },
];
/// Indexes in [`DOORBELLS`]: the datamatch pair at one address, and the final doorbell.
pub(crate) const DM_A: usize = 4;
pub(crate) const DM_B: usize = 5;
pub(crate) const FINAL: usize = 6;

/// The index in [`DOORBELLS`] of the plain doorbell of `width` bytes (1, 2, 4, 8).
pub(crate) fn doorbell_of_width(width: u32) -> Option<usize> {
    DOORBELLS[..4].iter().position(|d| d.width == width)
}

/// ES offset of a doorbell's register: ES base is `BAR_GPA - 0x10` (selector 0xffff).
pub(crate) fn reg_disp(d: &Doorbell) -> u16 {
    (d.bar_offset() + 0x10) as u16
}
