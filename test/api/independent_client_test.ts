// The contract is the proto, not grpc-js: a client built from a different stack
// (@connectrpc/connect speaking the gRPC protocol, with descriptors compiled by Debian's
// protoc from proto/) passes the same smoke test, rejection details included.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { barPath, GPU, startAgent, tempDir } from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

/** The calls this smoke test makes (messages are built from descriptors at run time). */
interface SmokeClient {
  getAgentInfo(req: object): Promise<{ apiVersions: string[] }>;
  listDevices(req: object): Promise<{ devices: { address: string }[] }>;
  createIoeventfd(req: object): Promise<{ id: string }>;
  listIoeventfds(req: object): Promise<{ totalSize: number }>;
  deleteIoeventfd(req: object): Promise<unknown>;
}

const PROTO = fileURLToPath(new URL("../../proto", import.meta.url));
const opts = { sanitizeOps: false, sanitizeResources: false };

/** protoc compiles the contract; a warning-free, complete descriptor set or a failure. */
function compileProto(): Uint8Array {
  const out = join(tempDir(), "ioeventd.binpb");
  const r = spawnSync("protoc", [
    `-I${PROTO}`,
    "--include_imports",
    `--descriptor_set_out=${out}`,
    "ioeventd/v1/ioeventd.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
  ], { encoding: "utf8" });
  assert.equal(r.status, 0, `protoc failed (is protobuf-compiler installed?): ${r.stderr}`);
  assert.equal(r.stderr.trim(), "", "protoc warnings");
  return readFileSync(out);
}

Deno.test(
  "independent client: connect-es over gRPC creates, signals, lists and reads rejections",
  opts,
  async () => {
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, compileProto()));
    const service = registry.getService("ioeventd.v1.IoeventfdService");
    assert.ok(service);
    const t = await startAgent({ listen: ["127.0.0.1:0"], allowInsecureTcp: true });
    const src = await SourceProcess.start(1);
    try {
      const client = createClient(
        service,
        createGrpcTransport({ baseUrl: `http://${t.agent.server.bound[0]}` }),
      ) as unknown as SmokeClient;
      const info = await client.getAgentInfo({});
      assert.deepEqual(info.apiVersions, ["ioeventd.v1"]);
      const devices = await client.listDevices({});
      assert.ok(devices.devices.some((d) => d.address === GPU));

      const created = await client.createIoeventfd({
        owner: "vm-connect",
        spec: {
          device: GPU,
          bar: 0,
          offset: 0x88704n,
          width: 4,
          data: 0x1234n,
          source: { pid: src.pid, fd: src.fds[0] },
        },
      });
      assert.match(created.id, /^ioe-/);
      await src.signal(0);
      await waitForBar(barPath(t.config, GPU, 0), 0x88704, 4, 0x1234n);
      const listed = await client.listIoeventfds({ owner: "vm-connect" });
      assert.equal(listed.totalSize, 1);

      const err = await client.createIoeventfd({
        owner: "vm-connect",
        spec: {
          device: GPU,
          bar: 0,
          offset: 0x88702n,
          width: 4,
          source: { pid: src.pid, fd: src.fds[0] },
        },
      }).then(() => assert.fail("accepted"), (e: unknown) => ConnectError.from(e));
      assert.equal(err.code, Code.InvalidArgument);
      const errorInfo = registry.getMessage("google.rpc.ErrorInfo")!;
      const badRequest = registry.getMessage("google.rpc.BadRequest")!;
      const [info0] = err.findDetails(errorInfo) as unknown as { reason: string; domain: string }[];
      assert.equal(info0.reason, "UNALIGNED");
      assert.equal(info0.domain, "ioeventd.v1");
      const [bad] = err.findDetails(badRequest) as unknown as {
        fieldViolations: { field: string }[];
      }[];
      assert.equal(bad.fieldViolations[0].field, "spec.offset");

      await client.deleteIoeventfd({ selector: { case: "id", value: created.id } });
      assert.equal((await client.listIoeventfds({})).totalSize, 0);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);
