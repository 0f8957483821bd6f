// Starting this agent's successor (SIGUSR2, the systemd upgrade): the same command line as
// this process's own (/proc/self/cmdline: deno, its flags, the entry point, the agent's
// flags), with --take-over=require, so it runs the files on disk now and takes over from
// this one. Its stdio and environment are this process's (systemd's journal and its
// NOTIFY_SOCKET: it tells systemd MAINPID=<itself> once it serves).

/** The successor's argv: ours, its --take-over replaced by "require". */
export function successorArgs(cmdline: readonly string[]): string[] {
  const args = cmdline.filter((a, i) =>
    !a.startsWith("--take-over=") && a !== "--take-over" && cmdline[i - 1] !== "--take-over"
  );
  return [...args, "--take-over=require"];
}

/** Spawns the successor (detached from this process's exit); its pid. */
export function spawnSuccessor(): number {
  // NUL-terminated arguments: an empty one (`--metrics-listen ""`) is kept.
  const cmdline = Deno.readTextFileSync("/proc/self/cmdline").split("\0").slice(0, -1);
  const [exe, ...args] = successorArgs(cmdline);
  // The path it was started as (an upgraded deno there is the successor's), else this one.
  const child = new Deno.Command(exe.startsWith("/") ? exe : Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  child.unref();
  return child.pid;
}
