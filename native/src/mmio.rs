//! The write path: one volatile, naturally aligned store of 1, 2, 4 or 8 bytes
//! (little-endian) into a mapped BAR.
//!
//! A [`MmioCell`] is validated once, when it is made (width, alignment, bounds), and holds
//! an `Arc` to its mapping, so every later access is in bounds of live memory.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

use crate::bar::Mapping;
use crate::sys::Errno;
use std::fmt;
use std::sync::Arc;

/// Why a location cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioError {
    /// The width is not 1, 2, 4 or 8 bytes (`EINVAL`).
    BadWidth(u32),
    /// The offset is not a multiple of the width (`EINVAL`).
    Misaligned,
    /// `offset + width` exceeds the mapping, overflow included (`ERANGE`).
    OutOfRange,
}

impl MmioError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            MmioError::BadWidth(_) | MmioError::Misaligned => Errno::EINVAL,
            MmioError::OutOfRange => Errno::ERANGE,
        }
    }
}

impl From<MmioError> for Errno {
    fn from(e: MmioError) -> Errno {
        e.errno()
    }
}

impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmioError::BadWidth(w) => write!(f, "width {w} is not 1, 2, 4 or 8 bytes"),
            MmioError::Misaligned => f.write_str("offset not naturally aligned for the width"),
            MmioError::OutOfRange => f.write_str("offset + width beyond the BAR"),
        }
    }
}

impl std::error::Error for MmioError {}

/// Access width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// 1 byte.
    W1,
    /// 2 bytes.
    W2,
    /// 4 bytes.
    W4,
    /// 8 bytes.
    W8,
}

impl Width {
    /// 1, 2, 4 or 8 bytes; anything else is [`MmioError::BadWidth`].
    pub(crate) fn from_bytes(bytes: u32) -> Result<Width, MmioError> {
        match bytes {
            1 => Ok(Width::W1),
            2 => Ok(Width::W2),
            4 => Ok(Width::W4),
            8 => Ok(Width::W8),
            _ => Err(MmioError::BadWidth(bytes)),
        }
    }

    /// Width in bytes.
    pub(crate) fn bytes(self) -> u64 {
        match self {
            Width::W1 => 1,
            Width::W2 => 2,
            Width::W4 => 4,
            Width::W8 => 8,
        }
    }

    /// `v` truncated to this width.
    pub fn truncate(self, v: u64) -> u64 {
        match self {
            Width::W8 => v,
            w => v & ((1u64 << (8 * w.bytes())) - 1),
        }
    }
}

/// One naturally aligned location of a mapped BAR.
pub struct MmioCell {
    /// Held, never read: keeps the mapping (and so `addr`) alive as long as the cell.
    _map: Arc<Mapping>,
    addr: *mut u8,
    width: Width,
}

// SAFETY: `addr` points into `_map`, which the cell keeps alive; the memory is shared MMIO
// (or a shared file mapping) that may be accessed from any thread with volatile accesses.
unsafe impl Send for MmioCell {}
// SAFETY: as above; the cell has no interior mutability of its own.
unsafe impl Sync for MmioCell {}

impl MmioCell {
    /// Validates and makes a cell (see [`MmioError`]).
    pub fn new(map: Arc<Mapping>, offset: u64, width: u32) -> Result<MmioCell, MmioError> {
        let width = Width::from_bytes(width)?;
        if !offset.is_multiple_of(width.bytes()) {
            return Err(MmioError::Misaligned);
        }
        match offset.checked_add(width.bytes()) {
            Some(end) if end <= map.len() => {}
            _ => return Err(MmioError::OutOfRange),
        }
        // In bounds by the check above (offset < len <= isize::MAX).
        let addr = map.as_ptr().wrapping_add(offset as usize);
        Ok(MmioCell {
            _map: map,
            addr,
            width,
        })
    }

    /// Access width.
    pub fn width(&self) -> Width {
        self.width
    }

    /// Stores `v` (truncated to the width, little-endian) with one volatile access.
    #[inline]
    pub fn store(&self, v: u64) {
        // SAFETY: `addr..addr+width` is inside the live mapping held by `self._map` and is
        // naturally aligned (page-aligned base, `offset % width == 0`), checked in `new`.
        unsafe {
            match self.width {
                Width::W1 => std::ptr::write_volatile(self.addr, v as u8),
                Width::W2 => std::ptr::write_volatile(self.addr.cast::<u16>(), (v as u16).to_le()),
                Width::W4 => std::ptr::write_volatile(self.addr.cast::<u32>(), (v as u32).to_le()),
                Width::W8 => std::ptr::write_volatile(self.addr.cast::<u64>(), v.to_le()),
            }
        }
    }

    /// Loads the location with one volatile access (little-endian).
    #[inline]
    pub fn load(&self) -> u64 {
        // SAFETY: same bounds and alignment argument as `store`.
        unsafe {
            match self.width {
                Width::W1 => u64::from(std::ptr::read_volatile(self.addr)),
                Width::W2 => u64::from(u16::from_le(std::ptr::read_volatile(self.addr.cast()))),
                Width::W4 => u64::from(u32::from_le(std::ptr::read_volatile(self.addr.cast()))),
                Width::W8 => u64::from_le(std::ptr::read_volatile(self.addr.cast())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_bar;

    #[test]
    fn each_width_writes_le_bytes_in_place_and_nothing_around() {
        let data = 0x1122_3344_5566_7788u64;
        for (width, at) in [(1u32, 17u64), (2, 34), (4, 68), (8, 136)] {
            let (p, m) = temp_bar(&format!("w{width}"), 256, 0xEE);
            let cell = MmioCell::new(m.clone(), at, width).unwrap();
            cell.store(data);
            let bytes = std::fs::read(&p).unwrap();
            let w = width as usize;
            let at = at as usize;
            assert_eq!(
                &bytes[at..at + w],
                &data.to_le_bytes()[..w],
                "width {width}"
            );
            assert!(
                bytes[..at].iter().all(|&b| b == 0xEE),
                "before, width {width}"
            );
            assert!(
                bytes[at + w..].iter().all(|&b| b == 0xEE),
                "after, width {width}"
            );
            assert_eq!(
                cell.load(),
                Width::from_bytes(width).unwrap().truncate(data)
            );
            std::fs::remove_file(&p).unwrap();
        }
    }

    #[test]
    fn validation() {
        let (p, m) = temp_bar("val", 64, 0);
        for w in [0u32, 3, 5, 16] {
            assert_eq!(
                MmioCell::new(m.clone(), 0, w).err().map(Errno::from),
                Some(Errno::EINVAL)
            );
        }
        assert_eq!(
            MmioCell::new(m.clone(), 2, 4).err().map(Errno::from),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            MmioCell::new(m.clone(), 1, 2).err().map(Errno::from),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            MmioCell::new(m.clone(), 64, 1).err().map(Errno::from),
            Some(Errno::ERANGE)
        );
        assert_eq!(
            MmioCell::new(m.clone(), 64, 8).err().map(Errno::from),
            Some(Errno::ERANGE)
        );
        assert_eq!(
            MmioCell::new(m.clone(), u64::MAX - 7, 8)
                .err()
                .map(Errno::from),
            Some(Errno::ERANGE)
        );
        assert!(MmioCell::new(m.clone(), 56, 8).is_ok());
        assert!(MmioCell::new(m.clone(), 63, 1).is_ok());
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn truncate() {
        assert_eq!(Width::W1.truncate(0x1234), 0x34);
        assert_eq!(Width::W2.truncate(0x12345), 0x2345);
        assert_eq!(Width::W4.truncate(u64::MAX), 0xffff_ffff);
        assert_eq!(Width::W8.truncate(u64::MAX), u64::MAX);
    }
}
