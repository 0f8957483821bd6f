// The errno values the native plugin returns (negated), by name. Linux x86_64 numbering.
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EMFILE: 24,
  ENOSPC: 28,
  ERANGE: 34,
  ENOSYS: 38,
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
