// The errno values the native plugin returns (negated), by name: every one the C ABI can
// return (native/src/sys errno table; the plugin's table, sent with its record layout, is
// compared with this one when the library is loaded). Linux x86_64 numbering.
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ELOOP: 40,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ECONNREFUSED: 111,
  ESTALE: 116,
  EMEDIUMTYPE: 124,
  EOWNERDEAD: 130,
} as const;

export type ErrnoName = keyof typeof Errno;

const byNumber = new Map<number, ErrnoName>(
  (Object.entries(Errno) as [ErrnoName, number][]).map(([name, n]) => [n, name]),
);

export function errnoName(errno: number): string {
  return byNumber.get(errno) ?? `errno ${errno}`;
}

/** A failed native call: `errno` is positive; `op` names the ABI function. */
export class NativeError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op}: ${errnoName(errno)}`);
    this.name = "NativeError";
  }
  is(name: ErrnoName): boolean {
    return this.errno === Errno[name];
  }
}
