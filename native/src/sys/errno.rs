//! `Errno`: a positive `errno` value, its named constants and the one table of their names
//! (the TypeScript table and the VM driver's names come from it).

use std::fmt;

/// A positive `errno` value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

/// Declares the named errno constants and the one table of their names.
macro_rules! errnos {
    ($($name:ident = $n:expr),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub const $name: Errno = Errno($n);
            )*
            /// Every errno the C ABI can return, by name (the TypeScript table,
            /// `service/native/errno.ts`, must equal it: `ioeventd_abi_layout` sends it).
            pub const TABLE: &'static [(&'static str, Errno)] = &[$((stringify!($name), Errno($n))),*];
        }
    };
}

errnos! {
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    ENFILE = 23,
    EMFILE = 24,
    ENOTTY = 25,
    ETXTBSY = 26,
    EFBIG = 27,
    ENOSPC = 28,
    EROFS = 30,
    ERANGE = 34,
    ENAMETOOLONG = 36,
    ENOSYS = 38,
    ELOOP = 40,
    EOVERFLOW = 75,
    EOPNOTSUPP = 95,
    EADDRINUSE = 98,
    EADDRNOTAVAIL = 99,
    ECONNREFUSED = 111,
    ESTALE = 116,
    EMEDIUMTYPE = 124,
    EOWNERDEAD = 130,
}

impl Errno {
    /// The symbolic name (`"ENOENT"`), if it is in [`Errno::TABLE`].
    pub fn name(self) -> Option<&'static str> {
        Errno::TABLE
            .iter()
            .find(|(_, e)| *e == self)
            .map(|(n, _)| *n)
    }

    /// The calling thread's current `errno`.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(5))
    }

    /// The errno of an `io::Error` (EIO when it carries none).
    pub fn from_io(e: &std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(5))
    }

    /// The value returned across the C ABI: `-errno`.
    pub fn to_abi(self) -> i64 {
        -i64::from(self.0)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Errno({}: {})",
            self.0,
            std::io::Error::from_raw_os_error(self.0)
        )
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl std::error::Error for Errno {}

/// The result of a system call wrapper.
pub type SysResult<T> = Result<T, Errno>;
