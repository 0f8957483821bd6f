// Running the Python clients of clients/python with Debian's python3 and the generated stubs.
import { fileURLToPath } from "node:url";

export const CLIENTS = fileURLToPath(new URL("../../clients/", import.meta.url));
/** Debian's interpreter, where python3-grpcio is installed (test/setup.sh). */
export const PYTHON = "/usr/bin/python3";

/** Runs a Python script of clients/python with the generated stubs on its path. */
export async function python(
  script: string,
  args: string[],
): Promise<{ code: number; lines: Record<string, unknown>[]; stderr: string }> {
  const out = await new Deno.Command(PYTHON, {
    args: [`${CLIENTS}python/${script}`, ...args],
    env: { PYTHONPATH: `${CLIENTS}python`, PYTHONDONTWRITEBYTECODE: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  return {
    code: out.code,
    lines: text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
    stderr: new TextDecoder().decode(out.stderr),
  };
}
