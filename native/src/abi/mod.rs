//! The C ABI v2 (README.md): the `extern "C"` exports, one file per topic, and the one
//! place where the crate's typed errors become `-errno`. Pointer arguments follow the
//! usual C contract (valid for the call, `cap` elements); the conversion to slices lives
//! in `sys::abi_slice_mut` / `sys::abi_cstr`, which also refuse null pointers.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

pub mod batch;
pub mod engine;
pub mod handover;
pub mod process;
pub mod registration;
pub mod source;
pub mod stats;
pub mod succession;
pub mod vfio;

use crate::sys::Errno;

/// An `i64` return value: the value, or `-errno`. The exports' bodies return
/// `Result<_, Errno>`: `?` turns every error type of the crate into its errno (its
/// `From<…> for Errno`), here and nowhere else.
fn ret_i64(r: Result<i64, Errno>) -> i64 {
    r.unwrap_or_else(Errno::to_abi)
}

/// An `i32` return value: the value, or `-errno`.
fn ret_i32(r: Result<i32, Errno>) -> i32 {
    r.unwrap_or_else(|e| -e.0)
}
