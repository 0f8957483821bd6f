//! The C ABI's pointer arguments as slices and strings (used by lib.rs only): null,
//! alignment and size are checked here, once.

/// Length and alignment checks shared by the caller-buffer helpers below: `Some(len)` when
/// a `(ptr, len)` array of `T` may be turned into a slice (`ptr` non-null and aligned, total
/// size in range), `None` otherwise; `len == 0` never touches `ptr`.
fn abi_len<T>(ptr: *const T, len: u64) -> Option<usize> {
    let len = usize::try_from(len).ok()?;
    if len == 0 {
        return Some(0);
    }
    let aligned = (ptr as usize).is_multiple_of(std::mem::align_of::<T>());
    let fits = len <= isize::MAX as usize / std::mem::size_of::<T>().max(1);
    (!ptr.is_null() && aligned && fits).then_some(len)
}

/// The caller's `(ptr, cap)` u64 buffer as a slice; `None` when `ptr` is null (or
/// misaligned) and `cap` is non-zero, an empty slice when `cap` is 0.
pub(crate) fn abi_slice_mut<'a>(ptr: *mut u64, cap: u64) -> Option<&'a mut [u64]> {
    match abi_len(ptr, cap)? {
        0 => Some(&mut []),
        // SAFETY: C ABI contract: a non-null `ptr` points to `cap` writable u64s owned by
        // the caller for the duration of the call (checked: non-null, aligned, size in range).
        len => Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) }),
    }
}

/// The caller's `(ptr, len)` u32 array; `None` when `ptr` is null (or misaligned) and `len`
/// is non-zero, an empty slice when `len` is 0.
pub(crate) fn abi_slice_u32<'a>(ptr: *const u32, len: u64) -> Option<&'a [u32]> {
    match abi_len(ptr, len)? {
        0 => Some(&[]),
        // SAFETY: C ABI contract: a non-null `ptr` points to `len` readable u32s owned by the
        // caller for the duration of the call (checked: non-null, aligned, size in range).
        len => Some(unsafe { std::slice::from_raw_parts(ptr, len) }),
    }
}

/// The caller's `(ptr, len)` byte buffer; `None` when `ptr` is null and `len` is non-zero.
pub(crate) fn abi_bytes<'a>(ptr: *const u8, len: u64) -> Option<&'a [u8]> {
    match abi_len(ptr, len)? {
        0 => Some(&[]),
        // SAFETY: C ABI contract: a non-null `ptr` points to `len` readable bytes owned by the
        // caller for the duration of the call (checked: non-null, size in range).
        len => Some(unsafe { std::slice::from_raw_parts(ptr, len) }),
    }
}

/// The caller's `(ptr, len)` writable byte buffer; `None` when `ptr` is null and `len` is
/// non-zero.
pub(crate) fn abi_bytes_mut<'a>(ptr: *mut u8, len: u64) -> Option<&'a mut [u8]> {
    match abi_len(ptr, len)? {
        0 => Some(&mut []),
        // SAFETY: C ABI contract: a non-null `ptr` points to `len` writable bytes owned by the
        // caller for the duration of the call (checked: non-null, size in range).
        len => Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) }),
    }
}

/// The caller's NUL-terminated string as bytes (without the NUL); `None` when null.
pub(crate) fn abi_cstr<'a>(ptr: *const u8) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: C ABI contract: a non-null `ptr` is a NUL-terminated string that stays valid
    // for the duration of the call.
    Some(unsafe { std::ffi::CStr::from_ptr(ptr.cast()) }.to_bytes())
}
