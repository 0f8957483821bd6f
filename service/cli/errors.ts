// ioeventctl's exit codes and the one error that means "the command line is wrong".
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, UNREACHABLE: 3, REJECTED: 4 } as const;

/** A mistake on the command line or in a file it names: exit 2, before any call. */
export class UsageError extends Error {}
