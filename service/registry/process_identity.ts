// Who a PID is: the start time of a process, which tells a reused PID from the process
// that had it. The native side records it for eventfd sources; a VFIO device descriptor
// is taken by the plugin without it, so the registry reads it here, around the take.

/**
 * Start time of process `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat, as
 * the native source_acquire reports it), or null when there is no such process.
 */
export function processStartTime(pid: number): bigint | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  // Field 2 (comm) is in parentheses and may hold spaces and ')': fields resume after the
  // last ')', starting with field 3 (state), so field 22 is the 20th of them.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const start = fields[19];
  return start !== undefined && /^[0-9]+$/.test(start) ? BigInt(start) : null;
}
