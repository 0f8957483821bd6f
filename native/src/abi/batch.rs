//! The batch calls: `count` records of the `register` / `unregister` layouts, one control
//! operation per worker for the whole batch.

use super::ret_i64;
use crate::abi_layout as layout;
use crate::engine::{self, Bar, RegisterRequest, VfioMode};
use crate::stats::Counters;
use crate::sys::{self, Errno};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `u64`s per `ioeventd_register_batch` record (see README.md).
pub const BATCH_RECORD_U64S: usize = layout::register::LEN;
/// Record kinds of `ioeventd_register_batch`.
const BATCH_KIND_FILE: u64 = 1;
const BATCH_KIND_VFIO: u64 = 2;

/// A record word holding an `i32` (sign-extended to 64 bits); `EINVAL` for anything else.
fn batch_i32(v: u64) -> Result<i32, Errno> {
    i32::try_from(v as i64).map_err(|_| Errno::EINVAL)
}

/// The NUL-terminated path at `offset` in `strings`, without its NUL.
fn batch_path(strings: &[u8], offset: u64) -> Result<&[u8], Errno> {
    let rest = usize::try_from(offset)
        .ok()
        .and_then(|o| strings.get(o..))
        .ok_or(Errno::EFAULT)?;
    let end = rest.iter().position(|&b| b == 0).ok_or(Errno::EFAULT)?;
    Ok(&rest[..end])
}

/// One `register` record as a request; a malformed one is `EINVAL` / `EFAULT`.
fn parse_record<'s>(r: &[u64], strings: &'s [u8]) -> Result<RegisterRequest<'s>, Errno> {
    use layout::register as w;
    // No word is truncated into a valid value.
    let width = u32::try_from(r[w::WIDTH]).map_err(|_| Errno::EINVAL)?;
    let (efd, pid) = (batch_i32(r[w::EFD])?, batch_i32(r[w::PID])?);
    let bar = match r[w::KIND] {
        BATCH_KIND_FILE => Bar::File(Path::new(OsStr::from_bytes(batch_path(
            strings,
            r[w::PATH_OR_DEVICE],
        )?))),
        BATCH_KIND_VFIO => Bar::Vfio {
            device: batch_i32(r[w::PATH_OR_DEVICE])?,
            region: u32::try_from(r[w::REGION]).map_err(|_| Errno::EINVAL)?,
            mode: u32::try_from(r[w::MODE])
                .ok()
                .and_then(VfioMode::from_u32)
                .ok_or(Errno::EINVAL)?,
        },
        _ => return Err(Errno::EINVAL),
    };
    Ok(RegisterRequest {
        bar,
        offset: r[w::OFFSET],
        width,
        data: r[w::DATA],
        efd,
        pid,
        pid_start: r[w::PID_START],
    })
}

/// Registers `count` records (`register` layout), one control operation per worker.
#[no_mangle]
pub extern "C" fn ioeventd_register_batch(
    engine: u64,
    recs: *mut u64,
    count: u64,
    strings: *const u8,
    strings_len: u64,
) -> i64 {
    ret_i64((|| {
        let e = crate::engine(engine)?;
        if count > engine::MAX_BATCH as u64 {
            return Err(Errno::EINVAL);
        }
        let words = count * BATCH_RECORD_U64S as u64;
        let recs = sys::abi_slice_mut(recs, words).ok_or(Errno::EFAULT)?;
        let strings = sys::abi_bytes(strings, strings_len).ok_or(Errno::EFAULT)?;
        // Parse every record; a malformed one is answered at once, the rest go as a batch.
        let mut reqs: Vec<RegisterRequest<'_>> = Vec::with_capacity(count as usize);
        let mut slots: Vec<Result<usize, Errno>> = Vec::with_capacity(count as usize);
        for r in recs.chunks_exact(BATCH_RECORD_U64S) {
            slots.push(parse_record(r, strings).map(|req| {
                reqs.push(req);
                reqs.len() - 1
            }));
        }
        let results = e.register_batch(&reqs);
        let mut ok = 0i64;
        for (rec, slot) in recs.chunks_exact_mut(BATCH_RECORD_U64S).zip(slots) {
            use layout::register as w;
            match slot.and_then(|i| results[i].map_err(Errno::from)) {
                Ok(id) => {
                    ok += 1;
                    rec[w::RESULT] = id;
                    rec[w::BACKEND] = e.backend(id).map(|b| b.code()).unwrap_or(0);
                    rec[w::WORKER] = e.worker_of(id).map(|w| w as u64).unwrap_or(u64::MAX);
                }
                Err(err) => {
                    rec[w::RESULT] = err.to_abi() as u64;
                    rec[w::BACKEND] = 0;
                    rec[w::WORKER] = u64::MAX;
                }
            }
        }
        Ok(ok)
    })())
}

/// Unregisters `count` records (`unregister` layout), each with its final counters.
#[no_mangle]
pub extern "C" fn ioeventd_unregister_batch(engine: u64, recs: *mut u64, count: u64) -> i64 {
    ret_i64((|| {
        let e = crate::engine(engine)?;
        if count > engine::MAX_BATCH as u64 {
            return Err(Errno::EINVAL);
        }
        use layout::unregister as w;
        let recs = sys::abi_slice_mut(recs, count * w::LEN as u64).ok_or(Errno::EFAULT)?;
        let ids: Vec<u64> = recs.chunks_exact(w::LEN).map(|r| r[w::ID]).collect();
        let results = e.unregister_batch(&ids);
        let mut ok = 0i64;
        for (rec, r) in recs.chunks_exact_mut(w::LEN).zip(results) {
            let (result, last) = match r {
                Ok(last) => {
                    ok += 1;
                    (0, last)
                }
                Err(err) => (Errno::from(err).to_abi() as u64, Counters::default()),
            };
            rec[w::RESULT] = result;
            rec[w::TRIGGERS..w::TRIGGERS + layout::counters::LEN].copy_from_slice(&last.as_words());
        }
        Ok(ok)
    })())
}
