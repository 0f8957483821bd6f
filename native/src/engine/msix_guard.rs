//! The MSI-X rule at registration: a write may not land in its device's MSI-X vector table
//! or pending-bit array, as the device's own config space (read here, not taken from the
//! caller) says — the sysfs `config` beside a `resourceN`, or a VFIO device's config
//! region. Checked on every backend before anything is armed (for the kernel backend too:
//! the kernel guards the table but leaves the PBA open).
//!
//! Why at registration only, and not per write: the MSI-X location is read-only device
//! state that changes only when the device is replaced or re-enumerated. The agent's rescan
//! re-validates every armed registration against the device as it is then and disarms
//! (ORPHANED) any that now overlaps, and a re-arm (replay, a new create) comes back through
//! this check. A config change on disk between two rescans is not seen by an armed write
//! until that rescan (`test/native/msix_guard_test.ts` shows it); re-reading config space
//! on the hot path would cost a `pread` per trigger, more than the write it guards.

use super::request::Bar;
use super::RegisterError;
use crate::msix::{self, ConfigError, MsixLayout};
use crate::vfio;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::path::PathBuf;

/// Where a layout was read from: a BAR file (its index is in its name), or a VFIO device.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Source {
    File(PathBuf),
    Vfio(RawFd),
}

/// The layouts read during one batch (each device's config space is read once per batch),
/// with the BAR index a file source stands for.
#[derive(Default)]
pub(super) struct MsixLayouts {
    read: HashMap<Source, Option<(u8, MsixLayout)>>,
}

impl MsixLayouts {
    /// Refuses `[offset, offset + width)` of the BAR in `bar` when it overlaps the device's
    /// MSI-X table or PBA. Called before the BAR is mapped, so a refused request maps nothing.
    pub(super) fn check(
        &mut self,
        bar: &Bar<'_>,
        offset: u64,
        width: u32,
    ) -> Result<(), RegisterError> {
        let (source, region) = match bar {
            // Canonical already (the batch resolved it: register.rs).
            Bar::File(path) => (Source::File(path.to_path_buf()), None),
            // The region was checked to be a BAR (0..=5) before.
            Bar::Vfio { device, region, .. } => (Source::Vfio(*device), u8::try_from(*region).ok()),
        };
        let layout = match self.read.get(&source) {
            Some(l) => *l,
            None => {
                let l = read(&source)?;
                self.read.insert(source, l);
                l
            }
        };
        match layout {
            Some((file_index, m)) => {
                Ok(m.check(region.unwrap_or(file_index), offset, u64::from(width))?)
            }
            None => Ok(()),
        }
    }
}

/// A source's MSI-X layout, with the BAR index of a file source (`None`: no MSI-X, or a
/// file that is not a PCI BAR).
fn read(source: &Source) -> Result<Option<(u8, MsixLayout)>, RegisterError> {
    match source {
        Source::File(path) => Ok(msix::for_bar_file(path)?),
        Source::Vfio(device) => {
            let config = vfio::read_config(*device, msix::CONFIG_STANDARD_SIZE)
                .map_err(|e| ConfigError::Read(e.errno()))?;
            Ok(msix::parse(&config)?.map(|m| (u8::MAX, m)))
        }
    }
}
