//! Shared read-write mappings of a file (a BAR's `resourceN`, a VFIO region).

use super::ffi;
use super::{Errno, SysResult};
use std::ffi::c_int;
use std::os::fd::RawFd;
use std::ptr::NonNull;

const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_SHARED: c_int = 1;

/// A shared read-write mapping of a whole file; unmapped on drop.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; the raw pointer is only an address. Any
// access through it goes through `mmio.rs` (volatile, bounds-checked at construction).
unsafe impl Send for Mmap {}
// SAFETY: as above; `Mmap` itself has no interior state besides the address and length.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`.
    pub fn map_shared(fd: RawFd, len: usize) -> SysResult<Mmap> {
        Mmap::map_shared_at(fd, len, 0)
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, offset)` (a VFIO region is
    /// mapped at its region offset, `index << 40` for vfio-pci). `EINVAL` for a zero
    /// length or an offset that does not fit `off_t`.
    pub fn map_shared_at(fd: RawFd, len: usize, offset: u64) -> SysResult<Mmap> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let offset = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL); no existing memory is
        // affected. The result is checked against MAP_FAILED.
        let p = unsafe {
            ffi::mmap(
                std::ptr::null_mut(),
                len,
                PROT_READ | PROT_WRITE,
                MAP_SHARED,
                fd,
                offset,
            )
        };
        if p as isize == -1 {
            return Err(Errno::last());
        }
        NonNull::new(p.cast::<u8>())
            .map(|ptr| Mmap { ptr, len })
            .ok_or(Errno::ENOMEM)
    }

    /// Base address (page aligned).
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (zero-length mappings are refused).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping we created and still own; every user holds
        // an `Arc` to its owner, so nothing references it once we are dropped.
        unsafe { ffi::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
