// Who asked for a mutation, as far as the registry needs to know: which processes the caller
// may name as sources (the source binding, service/security/source_binding.ts) and whose
// registrations it may see (a refusal names another registration only when it may). The
// security layer attaches it to the decoded request under CALLER; calls without one (the
// journal replay, tests calling the registry directly) are bound by nothing but the rule
// that the agent never takes its own descriptors.

export const CALLER: unique symbol = Symbol("ioeventd.caller");

export interface Caller {
  /** The caller's name in refusals ("local", "CN=…"). */
  name: string;
  /**
   * null when the caller may name process `pid` as a source for `owner`; otherwise the
   * sentence of the SOURCE_ACCESS_DENIED refusal.
   */
  mayName(pid: number, owner: string): string | null;
  /** Whether the caller may see registrations of `owner` (ids and owners in refusals). */
  canSee(owner: string): boolean;
}

/** The caller attached to a decoded request, if any. */
export function callerOf(request: unknown): Caller | undefined {
  return typeof request === "object" && request !== null
    ? (request as { [CALLER]?: Caller })[CALLER]
    : undefined;
}

/** Attaches `caller` to a decoded request (not enumerable: never encoded, logged or audited). */
export function withCaller<T extends object>(request: T, caller: Caller): T {
  Object.defineProperty(request, CALLER, { value: caller, enumerable: false });
  return request;
}
