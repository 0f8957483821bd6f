//! The VM driver's modules (`ioeventd-vm-driver.rs` runs them in order).

pub(crate) mod device;
pub(crate) mod msix;
pub(crate) mod report;
pub(crate) mod user_mmap;
pub(crate) mod vfio;
