// The Go example client (clients/go/example) compiles against Debian's gRPC and protobuf
// (golang-google-grpc-dev, golang-google-protobuf-dev, golang-google-genproto-dev) offline, in
// GOPATH mode over /usr/share/gocode, and runs against a live agent: create, delete, and a
// rejection's ErrorInfo reason. About 25 s cold (the Go build cache lives in the temp dir);
// `deno task clients:go` runs this file alone.
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { GPU, removeDir, tempDir, type TestAgent } from "../support/agent.ts";
import { startCliAgent } from "../support/ioeventctl.ts";
import { SourceProcess } from "../support/source_process.ts";
import { CLIENTS } from "./python.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "the Go example compiles offline and creates, is refused with a reason, deletes",
  opts,
  async () => {
    const gopath = tempDir("ioeventd-gopath-");
    let t: TestAgent | null = null;
    const source = await SourceProcess.start(1);
    try {
      mkdirSync(join(gopath, "src", "ioeventd.io", "clients"), { recursive: true });
      symlinkSync(join(CLIENTS, "go"), join(gopath, "src", "ioeventd.io", "clients", "go"));
      const binary = join(gopath, "example");
      const env = {
        GO111MODULE: "off",
        GOPATH: `${gopath}:/usr/share/gocode`,
        GOCACHE: join(gopath, "cache"),
        GOPROXY: "off",
        GOFLAGS: "",
      };
      const build = await new Deno.Command("go", {
        args: ["build", "-o", binary, "."],
        cwd: join(gopath, "src", "ioeventd.io", "clients", "go", "example"),
        env,
        stdout: "piped",
        stderr: "piped",
      }).output().catch((err) => {
        throw new Error(`go is not installed: run test/setup.sh (golang-go): ${err}`);
      });
      assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));

      t = await startCliAgent();
      const address = t.agent.server.bound.find((a) => a.startsWith("unix:"))!;
      const run = (extra: string[]) =>
        new Deno.Command(binary, {
          args: [
            "-address",
            address,
            "-device",
            GPU,
            "-pid",
            String(source.pid),
            "-fd",
            String(source.fds[0]),
            ...extra,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
      const ok = await run(["-request-id", "go-1"]);
      const out = new TextDecoder().decode(ok.stdout);
      assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
      assert.match(out, /^agent \S+ ready true$/m);
      assert.match(out, /^created ioe-\S+$/m);
      assert.match(out, /^deleted ioe-\S+$/m);

      // A width the agent refuses: the reason comes from ErrorInfo. (Arm one first, so the
      // example's create of the same key is refused as DUPLICATE.)
      await t.client.create({
        owner: "vm-other",
        spec: {
          device: GPU,
          bar: 0,
          offset: String(0x88704),
          width: 4,
          data: "0",
          source: { pid: source.pid, fd: source.fds[0] },
        },
      });
      const refused = await run(["-request-id", "go-2"]);
      assert.notEqual(refused.code, 0);
      assert.match(new TextDecoder().decode(refused.stderr), /refused: DUPLICATE/);
    } finally {
      await t?.stop();
      await source.kill();
      removeDir(gopath);
    }
  },
);
