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
  const cmdline = Deno.readTextFileSync("/proc/self/cmdline").split("\0").filter((a) => a !== "");
  const [exe, ...args] = successorArgs(cmdline);
  const child = new Deno.Command(exe === "deno" ? Deno.execPath() : exe, {
    args,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  child.unref();
  return child.pid;
}
