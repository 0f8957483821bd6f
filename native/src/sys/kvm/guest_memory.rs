//! The memory a VM's slots are backed by: anonymous RAM, or a shared mapping of a file, with
//! bounds-checked volatile accesses.

use crate::sys::mmap::Mmap;
use crate::sys::{ffi, Errno, SysResult};
use std::ffi::c_int;
use std::os::fd::RawFd;
use std::ptr::NonNull;

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
