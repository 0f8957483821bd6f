// Runs ioeventctl as its own process, as a person or a pipeline would. Asynchronous on
// purpose: an agent under test may share this process's event loop.
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../service/cli/ioeventctl.ts", import.meta.url));

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
