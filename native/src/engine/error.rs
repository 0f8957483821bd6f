//! The engine's errors: [`RegisterError`] (why a registration was refused) and
//! [`EngineError`] (every other operation). Each becomes an errno only at the C ABI
//! ([`RegisterError::errno`], [`EngineError::errno`]).

use crate::bar::BarError;
use crate::control::ControlError;
use crate::mmio::MmioError;
use crate::monitor::{QueueClosed, WatchError};
use crate::msix::{ConfigError, MsixOverlap, MsixStructure};
use crate::sys::Errno;
use crate::vfio::VfioError;
use std::fmt;

/// The engine was closed (`EBADF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// The engine was closed (`EBADF`).
    Closed,
    /// More requests than one batch may hold (`EINVAL`).
    TooMany,
    /// Width, alignment or bounds of the location (`EINVAL`, `ERANGE`); the same rule for
    /// every backend.
    Location(MmioError),
    /// The eventfd argument is negative (`EBADF`).
    FdNotOpen,
    /// The descriptor is not an eventfd (`EMEDIUMTYPE`).
    NotEventfd,
    /// The same descriptor is registered already, or twice in one batch (`EEXIST`).
    DuplicateFd,
    /// The kernel and the workers cannot share one eventfd (`EBUSY`).
    Busy,
    /// The VFIO descriptor is not a vfio-pci device (`ENODEV`: `EMEDIUMTYPE` is "not an
    /// eventfd" for a registration).
    NotVfioDevice,
    /// A VFIO refusal: the region lookup, or the kernel's own rules for its ioeventfds.
    Vfio(VfioError),
    /// The BAR cannot be mapped.
    Bar(BarError),
    /// The write would land in the device's MSI-X vector table (`EADDRINUSE`) or PBA
    /// (`EADDRNOTAVAIL`), as the device's own config space says.
    Msix(MsixOverlap),
    /// The device's config space cannot be read or parsed, so the MSI-X structures cannot
    /// be ruled out (its read errno, else `EIO`).
    Config(ConfigError),
    /// The source process cannot be watched (gone, or not the one started at `pid_start`).
    SourceProcess(WatchError),
    /// The worker did not take the registration.
    Worker(ControlError),
    /// Any other failure of a system call.
    Sys(Errno),
}

impl RegisterError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            RegisterError::Closed | RegisterError::FdNotOpen => Errno::EBADF,
            RegisterError::TooMany => Errno::EINVAL,
            RegisterError::Location(e) => e.errno(),
            RegisterError::NotEventfd => Errno::EMEDIUMTYPE,
            RegisterError::DuplicateFd => Errno::EEXIST,
            RegisterError::Busy => Errno::EBUSY,
            RegisterError::NotVfioDevice => Errno::ENODEV,
            RegisterError::Vfio(e) => e.errno(),
            RegisterError::Bar(e) => e.errno(),
            RegisterError::Msix(o) => match o.structure {
                MsixStructure::Table => Errno::EADDRINUSE,
                MsixStructure::Pba => Errno::EADDRNOTAVAIL,
            },
            RegisterError::Config(e) => e.errno(),
            RegisterError::SourceProcess(e) => e.errno(),
            RegisterError::Worker(e) => e.errno(),
            RegisterError::Sys(e) => *e,
        }
    }
}

impl From<RegisterError> for Errno {
    fn from(e: RegisterError) -> Errno {
        e.errno()
    }
}

impl From<Closed> for RegisterError {
    fn from(_: Closed) -> RegisterError {
        RegisterError::Closed
    }
}

impl From<MmioError> for RegisterError {
    fn from(e: MmioError) -> RegisterError {
        RegisterError::Location(e)
    }
}

impl From<BarError> for RegisterError {
    fn from(e: BarError) -> RegisterError {
        RegisterError::Bar(e)
    }
}

impl From<VfioError> for RegisterError {
    fn from(e: VfioError) -> RegisterError {
        match e {
            VfioError::NotVfioDevice => RegisterError::NotVfioDevice,
            e => RegisterError::Vfio(e),
        }
    }
}

impl From<MsixOverlap> for RegisterError {
    fn from(e: MsixOverlap) -> RegisterError {
        RegisterError::Msix(e)
    }
}

impl From<ConfigError> for RegisterError {
    fn from(e: ConfigError) -> RegisterError {
        RegisterError::Config(e)
    }
}

impl From<WatchError> for RegisterError {
    fn from(e: WatchError) -> RegisterError {
        RegisterError::SourceProcess(e)
    }
}

impl From<ControlError> for RegisterError {
    fn from(e: ControlError) -> RegisterError {
        RegisterError::Worker(e)
    }
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Closed => f.write_str("the engine is closed"),
            RegisterError::TooMany => f.write_str("too many requests in one batch"),
            RegisterError::Location(e) => write!(f, "location: {e}"),
            RegisterError::FdNotOpen => f.write_str("no eventfd descriptor"),
            RegisterError::NotEventfd => f.write_str("the descriptor is not an eventfd"),
            RegisterError::DuplicateFd => f.write_str("the descriptor is registered already"),
            RegisterError::Busy => {
                f.write_str("the eventfd is served by the other side (kernel or workers)")
            }
            RegisterError::NotVfioDevice => f.write_str("not a vfio-pci device"),
            RegisterError::Vfio(e) => write!(f, "VFIO: {e}"),
            RegisterError::Bar(e) => write!(f, "BAR: {e}"),
            RegisterError::Msix(o) => write!(f, "{o}"),
            RegisterError::Config(e) => write!(f, "device: {e}"),
            RegisterError::SourceProcess(e) => write!(f, "source process: {e}"),
            RegisterError::Worker(e) => write!(f, "worker: {e}"),
            RegisterError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for RegisterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegisterError::Location(e) => Some(e),
            RegisterError::Vfio(e) => Some(e),
            RegisterError::Bar(e) => Some(e),
            RegisterError::Config(e) => Some(e),
            RegisterError::SourceProcess(e) => Some(e),
            RegisterError::Worker(e) => Some(e),
            RegisterError::Sys(e) => Some(e),
            _ => None,
        }
    }
}

/// Why an engine operation other than registering failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    /// The engine was closed (`EBADF`).
    Closed,
    /// Too many workers or CPUs, or a CPU id beyond `CPU_SETSIZE` (`EINVAL`).
    InvalidConfig,
    /// No registration has that id (`ENOENT`).
    UnknownId,
    /// The kernel serves that registration: it has no worker (`EOPNOTSUPP`).
    KernelServed,
    /// The worker did not answer as asked.
    Worker(ControlError),
    /// A system call failed (thread start, pinning, eventfds, epoll).
    Sys(Errno),
}

impl EngineError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            EngineError::Closed => Errno::EBADF,
            EngineError::InvalidConfig => Errno::EINVAL,
            EngineError::UnknownId => Errno::ENOENT,
            EngineError::KernelServed => Errno::EOPNOTSUPP,
            EngineError::Worker(e) => e.errno(),
            EngineError::Sys(e) => *e,
        }
    }
}

impl From<EngineError> for Errno {
    fn from(e: EngineError) -> Errno {
        e.errno()
    }
}

impl From<Closed> for EngineError {
    fn from(_: Closed) -> EngineError {
        EngineError::Closed
    }
}

impl From<QueueClosed> for EngineError {
    fn from(_: QueueClosed) -> EngineError {
        EngineError::Closed
    }
}

impl From<ControlError> for EngineError {
    fn from(e: ControlError) -> EngineError {
        EngineError::Worker(e)
    }
}

impl From<Errno> for EngineError {
    fn from(e: Errno) -> EngineError {
        EngineError::Sys(e)
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Closed => f.write_str("the engine is closed"),
            EngineError::InvalidConfig => f.write_str("invalid engine configuration"),
            EngineError::UnknownId => f.write_str("no such registration"),
            EngineError::KernelServed => f.write_str("served by the kernel (no worker)"),
            EngineError::Worker(e) => write!(f, "worker: {e}"),
            EngineError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Worker(e) => Some(e),
            EngineError::Sys(e) => Some(e),
            _ => None,
        }
    }
}
