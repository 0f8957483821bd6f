//! Statistics snapshots: per registration, per worker, and the histogram bounds.

use super::ret_i64;
use crate::abi_layout as layout;
use crate::stats;
use crate::sys::{self, Errno};

/// Up to `cap` records (`stats` layout), sorted by id; returns the total count.
#[no_mangle]
pub extern "C" fn ioeventd_stats_registrations(engine: u64, buf: *mut u64, cap: u64) -> i64 {
    ret_i64((|| {
        let e = crate::engine(engine)?;
        let len = layout::stats::LEN;
        let out = sys::abi_slice_mut(buf, cap.saturating_mul(len as u64)).ok_or(Errno::EFAULT)?;
        let recs = e.registration_stats()?;
        for (dst, rec) in out.chunks_exact_mut(len).zip(&recs) {
            dst.copy_from_slice(&rec.as_words());
        }
        Ok(recs.len() as i64)
    })())
}

/// The counters of chosen registrations: `buf` holds `n` records (`stats` layout) whose ID
/// words the caller set; each is filled in, or its ID set to 0 when there is no such
/// registration. Returns how many were found.
#[no_mangle]
pub extern "C" fn ioeventd_stats_of(engine: u64, buf: *mut u64, n: u64) -> i64 {
    ret_i64((|| {
        let e = crate::engine(engine)?;
        let len = layout::stats::LEN;
        let out = sys::abi_slice_mut(buf, n.saturating_mul(len as u64)).ok_or(Errno::EFAULT)?;
        let ids: Vec<u64> = out
            .chunks_exact(len)
            .map(|r| r[layout::stats::ID])
            .collect();
        let recs = e.registration_stats_of(ids.into_iter())?;
        let mut found = 0;
        for (dst, rec) in out.chunks_exact_mut(len).zip(&recs) {
            match rec {
                Some(rec) => {
                    dst.copy_from_slice(&rec.as_words());
                    found += 1;
                }
                None => dst.fill(0),
            }
        }
        Ok(found)
    })())
}

/// The finite histogram bucket bounds in ns; returns how many there are.
#[no_mangle]
pub extern "C" fn ioeventd_histogram_bounds(buf: *mut u64, cap: u64) -> i64 {
    ret_i64((|| {
        let out = sys::abi_slice_mut(buf, cap).ok_or(Errno::EFAULT)?;
        for (dst, b) in out.iter_mut().zip(stats::BOUNDS_NS.iter()) {
            *dst = *b;
        }
        Ok(stats::BOUNDS_NS.len() as i64)
    })())
}

/// Every worker's record (`worker` layout), when `cap` holds them all; returns the words needed.
#[no_mangle]
pub extern "C" fn ioeventd_stats_workers(engine: u64, buf: *mut u64, cap: u64) -> i64 {
    ret_i64((|| {
        let e = crate::engine(engine)?;
        let v = e.worker_stats()?;
        if cap >= v.len() as u64 {
            let out = sys::abi_slice_mut(buf, v.len() as u64).ok_or(Errno::EFAULT)?;
            out.copy_from_slice(&v);
        }
        Ok(v.len() as i64)
    })())
}
