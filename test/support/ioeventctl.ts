// Runs ioeventctl as its own process, as a person or a pipeline would. Asynchronous on
// purpose: an agent under test may share this process's event loop.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AgentConfig } from "../../service/config.ts";
import { startAgent, tempDir, type TestAgent } from "./agent.ts";

export const CLI = fileURLToPath(new URL("../../service/cli/ioeventctl.ts", import.meta.url));

export async function ctl(
  address: string,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, "--address", address, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: r.code, out: text.decode(r.stdout), err: text.decode(r.stderr) };
}

/** A long-running ioeventctl (watch): its output so far, a wait for a line, its end. */
export interface RunningCtl {
  pid: number;
  /** Resolves once stdout contains `text`. */
  waitFor(text: string, ms?: number): Promise<void>;
  done: Promise<{ code: number; out: string; err: string }>;
}

export function spawnCtl(address: string, ...args: string[]): RunningCtl {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, "--address", address, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const waiters: { text: string; resolve: () => void }[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      out += decoder.decode(chunk, { stream: true });
      for (const w of waiters.filter((w) => out.includes(w.text))) w.resolve();
    }
  })();
  const err = new Response(child.stderr).text();
  return {
    pid: child.pid,
    waitFor(text, ms = 15_000) {
      if (out.includes(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${text} in ${ms} ms: ${out}`)), ms);
        waiters.push({
          text,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    done: (async () => {
      const status = await child.status;
      await reading;
      return { code: status.code, out, err: await err };
    })(),
  };
}

/**
 * A policy for agents that separate client processes talk to (ioeventctl, the example
 * clients). A local caller may by default name only its own process tree
 * (service/security/README.md), and the tests' source processes are the test's children, not
 * the client's; so the local caller is allowed the sources of its own uid, as an operator's
 * shell would be configured.
 */
export function operatorPolicyFile(): string {
  const policyFile = join(tempDir("ioeventd-policy-"), "policy.json");
  writeFileSync(
    policyFile,
    JSON.stringify({
      identities: [
        { identity: "local", role: "admin", sources: { callerUid: true } },
        { identity: "insecure", role: "admin", sources: { callerUid: true } },
      ],
    }),
  );
  return policyFile;
}

/** An in-process agent with operatorPolicyFile's policy. */
export async function startCliAgent(
  overrides: Partial<AgentConfig> = {},
): Promise<TestAgent> {
  return await startAgent({ policyFile: operatorPolicyFile(), ...overrides });
}
