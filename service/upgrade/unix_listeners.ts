// Unix-socket listeners that change hands without a refused connection: each is bound under
// a private name (<path>.<pid>) and renamed over its public path, so a client connecting at
// any moment finds a listener — the predecessor's until the rename, the successor's after —
// and the path is never missing. On stop, the path is removed only while it is still this
// agent's socket (same inode): a successor's is left alone. (grpc-js removes the name it
// bound at shutdown; that is the private one, long gone.)
import { existsSync, lstatSync, renameSync, rmSync } from "node:fs";

/** The path of a `unix:` or `unix://` address. */
export function unixPath(address: string): string {
  return address.replace(/^unix:(\/\/)?/, "");
}

/** The address to bind instead of `address` (unchanged for a TCP one). */
export function bindAddress(address: string): string {
  return address.startsWith("unix:") ? `unix://${unixPath(address)}.${Deno.pid}` : address;
}

/** The public address of a bound one (a private unix name back to its path). */
export function publicAddress(bound: string): string {
  return bound.startsWith("unix:") ? bound.replace(new RegExp(`\\.${Deno.pid}$`), "") : bound;
}

/** Sockets bound under their private names, published over their public paths. */
export class PublishedSockets {
  readonly #inodes = new Map<string, number>();

  /** Renames each bound `unix:` listener of `addresses` over its public path. */
  publish(addresses: readonly string[]): void {
    for (const address of addresses) {
      if (!address.startsWith("unix:")) continue;
      const path = unixPath(address);
      const bound = unixPath(bindAddress(address));
      renameSync(bound, path);
      this.#inodes.set(path, lstatSync(path).ino);
    }
  }

  /** Removes each public path that is still this agent's socket. */
  unpublish(): void {
    for (const [path, ino] of this.#inodes) {
      try {
        if (existsSync(path) && lstatSync(path).ino === ino) rmSync(path);
      } catch { /* already gone */ }
    }
    this.#inodes.clear();
  }
}
