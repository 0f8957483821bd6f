// A small ioeventd client in TypeScript, on the stubs of clients/typescript/gen (protoc-gen-es)
// and connect-es over gRPC (@connectrpc/connect, @connectrpc/connect-node):
//   deno run -A clients/typescript/example.ts --address 127.0.0.1:50051 --pid PID --fd FD
// It creates an ioeventfd idempotently (request_id), reads a rejection's ErrorInfo and deletes.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.ts";
import { IoeventfdService } from "./gen/ioeventd/v1/ioeventd_pb.ts";

function flag(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Deno.args[i + 1] : fallback;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

// Deadlines on every call; the retry policy of clients/service_config.json is grpc-core's
// (Python, Go): with connect-es, retry UNAVAILABLE yourself, with the same request_id.
const client = createClient(
  IoeventfdService,
  createGrpcTransport({ baseUrl: `http://${flag("address")}` }),
);
const timeoutMs = 10_000;
const info = await client.getAgentInfo({}, { timeoutMs });
console.log(JSON.stringify({ step: "info", version: info.version, ready: info.ready }));

const req = {
  owner: flag("owner", "vm-ts"),
  requestId: crypto.randomUUID(),
  spec: {
    device: flag("device", "0000:65:00.0"),
    bar: 0,
    offset: 0x88704n,
    width: 4,
    data: 0n,
    source: { pid: Number(flag("pid")), fd: Number(flag("fd")) },
  },
};
const created = await client.createIoeventfd(req, { timeoutMs });
const again = await client.createIoeventfd(req, { timeoutMs }); // a retry: the same one
console.log(JSON.stringify({ step: "create", id: created.id, retriedId: again.id }));

try {
  await client.createIoeventfd({ ...req, requestId: crypto.randomUUID() }, { timeoutMs });
} catch (err) {
  const e = ConnectError.from(err);
  const [info] = e.findDetails(ErrorInfoSchema);
  console.log(JSON.stringify({ step: "rejection", code: Code[e.code], reason: info?.reason }));
}
await client.deleteIoeventfd({ selector: { case: "id", value: created.id } }, { timeoutMs });
console.log(JSON.stringify({ step: "delete", id: created.id }));
