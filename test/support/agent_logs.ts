// Follows a spawned agent's structured log (JSON lines on stderr) and tells when it serves.
export interface AgentLogs {
  /** Every line so far, in order. */
  lines: string[];
  /** Resolves once the agent logs "ioeventd serving"; rejects if it exits before. */
  serving: Promise<void>;
}

export function followAgentLogs(child: Deno.ChildProcess): AgentLogs {
  const lines: string[] = [];
  let ready = () => {};
  const up = new Promise<void>((r) => (ready = r));
  const read = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts.filter(Boolean)) {
        lines.push(line);
        if (line.includes('"ioeventd serving"')) ready();
      }
    }
  })();
  const failed = child.status.then(async (s) => {
    // Its last lines (why it failed) may still be in the pipe: read them first (bounded: a
    // successor it started may hold the pipe open).
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([read, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    throw new Error(`agent exited (${s.code}) before serving:\n${lines.join("\n")}`);
  });
  failed.catch(() => {});
  return { lines, serving: Promise.race([up, failed]) };
}
