// Server reflection as descriptor-based clients (grpcurl, grpcui, Postman) use it: a client
// that knows nothing of ioeventd but the reflection protocol asks for the service's file,
// follows its imports by file name, builds a descriptor pool from what it was sent, and then
// makes a real call whose answer it decodes with that pool alone.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  create,
  createFileRegistry,
  type DescMessage,
  type FileRegistry,
  fromBinary,
  type Message,
  toJson,
} from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DESCRIBED_FILES, DESCRIPTOR_SET_PATH } from "../../service/api/reflection.ts";
import { startAgent, tempDir } from "../support/agent.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const PROTO = fileURLToPath(new URL("../../proto", import.meta.url));

// The client's own copy of the reflection protocol (the part it uses), as grpcurl compiles
// in grpc/reflection/v1/reflection.proto: nothing here comes from ioeventd.
const REFLECTION_PROTO = `
syntax = "proto3";
package grpc.reflection.v1;
service ServerReflection {
  rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse);
}
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    string list_services = 7;
  }
}
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ServiceResponse { string name = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
`;

function protoc(dir: string, files: string[], extra: string[] = []): Uint8Array {
  const out = join(tempDir(), "set.binpb");
  const r = spawnSync("protoc", [`-I${dir}`, ...extra, `--descriptor_set_out=${out}`, ...files], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `protoc failed (is protobuf-compiler installed?): ${r.stderr}`);
  return readFileSync(out);
}

function reflectionRegistry(): FileRegistry {
  const dir = tempDir();
  writeFileSync(join(dir, "reflection.proto"), REFLECTION_PROTO);
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, protoc(dir, ["reflection.proto"])));
}

type Request =
  | { case: "fileByFilename"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | { case: "listServices"; value: string };

interface Response {
  messageResponse:
    | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
    | { case: "listServicesResponse"; value: { service: { name: string }[] } }
    | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } }
    | { case: undefined };
}

interface ReflectionClient {
  serverReflectionInfo(
    requests: AsyncIterable<{ messageRequest: Request }>,
  ): AsyncIterable<Response>;
}

/** A reflection client in the manner of grpcurl: symbol → file, then imports by file name. */
class Reflector {
  readonly files = new Map<string, FileDescriptorProto>();
  constructor(private readonly client: ReflectionClient) {}

  async ask(request: Request): Promise<Response["messageResponse"]> {
    async function* one() {
      yield { messageRequest: request };
    }
    const answers: Response["messageResponse"][] = [];
    for await (const r of this.client.serverReflectionInfo(one())) answers.push(r.messageResponse);
    assert.equal(answers.length, 1);
    return answers[0];
  }

  async files_(request: Request): Promise<FileDescriptorProto[]> {
    const answer = await this.ask(request);
    if (answer.case === "errorResponse") {
      assert.fail(`${request.case} ${request.value}: ${answer.value.errorMessage}`);
    }
    assert.equal(answer.case, "fileDescriptorResponse");
    return answer.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
  }

  /** The file defining `symbol` and, transitively, every file it imports. */
  async resolve(symbol: string): Promise<void> {
    const pending = await this.files_({ case: "fileContainingSymbol", value: symbol });
    while (pending.length > 0) {
      const file = pending.shift()!;
      if (this.files.has(file.name)) continue;
      this.files.set(file.name, file);
      for (const dep of file.dependency) {
        if (this.files.has(dep) || pending.some((f) => f.name === dep)) continue;
        pending.push(...await this.files_({ case: "fileByFilename", value: dep }));
      }
    }
  }

  /** A pool of every file received, imports before their importers (as protoc orders them). */
  registry(): FileRegistry {
    const ordered: FileDescriptorProto[] = [];
    const visit = (name: string) => {
      const file = this.files.get(name);
      assert.ok(file, `${name} was never served`);
      if (ordered.includes(file)) return;
      file.dependency.forEach(visit);
      ordered.push(file);
    };
    [...this.files.keys()].forEach(visit);
    return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
  }
}

Deno.test(
  "reflection: a client with nothing but reflection builds its descriptors and calls the API",
  opts,
  async () => {
    const t = await startAgent({ listen: ["127.0.0.1:0"], allowInsecureTcp: true });
    try {
      const transport = createGrpcTransport({ baseUrl: `http://${t.agent.server.bound[0]}` });
      const reflection = reflectionRegistry().getService("grpc.reflection.v1.ServerReflection")!;
      const reflector = new Reflector(
        createClient(reflection, transport) as unknown as ReflectionClient,
      );

      const listed = await reflector.ask({ case: "listServices", value: "*" });
      assert.equal(listed.case, "listServicesResponse");
      const services = listed.value.service.map((s) => s.name);
      assert.ok(services.includes("ioeventd.v1.IoeventfdService"), services.join(", "));

      await reflector.resolve("ioeventd.v1.IoeventfdService");
      const main = reflector.files.get("ioeventd/v1/ioeventd.proto");
      assert.ok(main, `the file keeps its path in proto/: got ${[...reflector.files.keys()]}`);
      assert.deepEqual(main.dependency, ["google/protobuf/timestamp.proto"]);
      assert.ok(reflector.files.has("google/protobuf/timestamp.proto"));
      const registry = reflector.registry();

      const agentInfo = registry.getMessage("ioeventd.v1.AgentInfo")!;
      assert.ok(agentInfo.fields.some((f) => f.name === "machine_id"), "original field names");
      const service = registry.getService("ioeventd.v1.IoeventfdService")!;
      const api = createClient(service, transport) as unknown as {
        getAgentInfo(req: object): Promise<Message>;
      };
      const info = await api.getAgentInfo({});
      const json = toJson(agentInfo as DescMessage, info, {
        useProtoFieldName: true,
        alwaysEmitImplicit: true,
        registry,
      }) as Record<string, unknown>;
      const expected = t.agent.info();
      assert.equal(json.machine_id, expected.machineId);
      assert.deepEqual(json.api_versions, ["ioeventd.v1"]);
      assert.equal(typeof json.started_at, "string", "the Timestamp import resolved");

      // Rejection details decode with reflected descriptors too (grpc-status-details-bin).
      await reflector.resolve("google.rpc.Status");
      await reflector.resolve("google.rpc.BadRequest");
      assert.ok(reflector.registry().getMessage("google.rpc.ErrorInfo"));
    } finally {
      await t.stop();
    }
  },
);

Deno.test("reflection: the served descriptor set is protoc's compilation of proto/", () => {
  // `deno task gen` writes it; a proto/ change without a regeneration fails here.
  const fresh = protoc(PROTO, DESCRIBED_FILES, ["--include_imports"]);
  const committed = readFileSync(DESCRIPTOR_SET_PATH);
  assert.ok(
    Buffer.from(committed).equals(Buffer.from(fresh)),
    `${DESCRIPTOR_SET_PATH} is stale: run \`deno task gen\``,
  );
});
