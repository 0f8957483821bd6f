// Loads the API contract from proto/ once, for the server and every client (the CLI, the
// tests). The loader options must match scripts/gen_proto.ts, which generates the types.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { fileURLToPath } from "node:url";
import type { ProtoGrpcType } from "./generated/ioeventd.ts";

export const PROTO_DIR = fileURLToPath(new URL("../../proto", import.meta.url));

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let loaded: ProtoGrpcType | null = null;

/** The ioeventd.v1 package as grpc-js service constructors and definitions. */
export function api(): ProtoGrpcType {
  if (loaded === null) {
    const definition = protoLoader.loadSync(["ioeventd/v1/ioeventd.proto"], LOADER_OPTIONS);
    loaded = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return loaded;
}

/** The raw package definition (reflection needs it). */
export function packageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(["ioeventd/v1/ioeventd.proto"], LOADER_OPTIONS);
}

let statusRoot: protobuf.Root | null = null;

/** google.rpc.Status and its detail messages, for grpc-status-details-bin. */
export function statusTypes(): {
  Status: protobuf.Type;
  ErrorInfo: protobuf.Type;
  BadRequest: protobuf.Type;
} {
  if (statusRoot === null) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) =>
      target.startsWith("google/protobuf/") ? target : `${PROTO_DIR}/${target}`;
    root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
    statusRoot = root;
  }
  return {
    Status: statusRoot.lookupType("google.rpc.Status"),
    ErrorInfo: statusRoot.lookupType("google.rpc.ErrorInfo"),
    BadRequest: statusRoot.lookupType("google.rpc.BadRequest"),
  };
}
