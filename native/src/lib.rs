//! ioeventd native data plane: the module tree, the C ABI's handle table — nothing else.
//! The `extern "C"` exports (C ABI v2, see README.md) live in [`abi`], one file per topic,
//! and are re-exported here.
//!
//! Every export returns `-errno` on failure and never panics. Inside the crate errors are
//! typed per module (`SourceError`, `BarError`, `VfioError`, `RegisterError`, ...); they
//! become an errno only in [`abi`].

#![deny(missing_docs)]

pub mod abi;
pub mod abi_layout;
pub mod bar;
mod control;
pub mod engine;
pub mod handover;
pub mod mmio;
pub mod monitor;
pub mod msix;
pub mod process_stats;
pub mod procfs;
mod slot_token;
pub mod source;
pub mod stats;
pub mod succession;
pub mod sys;
#[cfg(test)]
mod test_support;
pub mod vfio;
pub mod worker;

pub use abi::batch::*;
pub use abi::engine::*;
pub use abi::handover::*;
pub use abi::registration::*;
pub use abi::source::*;
pub use abi::stats::*;
pub use abi::vfio::*;

use engine::Engine;
use std::sync::{Arc, Mutex, MutexGuard};
use sys::Errno;

/// The ABI version implemented.
pub const ABI_VERSION: u32 = 3;

/// Open engines; handle = index + 1. Slots are never reused, so a stale handle stays
/// invalid (`EBADF`) forever.
static ENGINES: Mutex<Vec<Option<Arc<Engine>>>> = Mutex::new(Vec::new());

fn engines() -> MutexGuard<'static, Vec<Option<Arc<Engine>>>> {
    ENGINES.lock().unwrap_or_else(|e| e.into_inner())
}

/// The index of `handle` in the table (handles start at 1).
fn handle_index(handle: u64) -> Option<usize> {
    usize::try_from(handle).ok().and_then(|h| h.checked_sub(1))
}

/// The open engine of `handle`; `EBADF` for any other value.
pub(crate) fn engine(handle: u64) -> Result<Arc<Engine>, Errno> {
    handle_index(handle)
        .and_then(|i| engines().get(i).and_then(|e| e.clone()))
        .ok_or(Errno::EBADF)
}

/// Adds an engine to the table; returns its handle.
pub(crate) fn insert_engine(e: Engine) -> u64 {
    let mut table = engines();
    table.push(Some(Arc::new(e)));
    table.len() as u64
}

/// Takes the engine of `handle` out of the table (its handle is invalid from now on).
pub(crate) fn take_engine(handle: u64) -> Option<Arc<Engine>> {
    handle_index(handle).and_then(|i| engines().get_mut(i).and_then(Option::take))
}
