// The host list of `ioeventctl fleet`: files, lists, stdin, names, default port, mistakes.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  DEFAULT_GRPC_PORT,
  HostListError,
  loadHosts,
  normalizeAddress,
} from "../../service/cli/fleet_hosts.ts";
import { removeDir, tempDir } from "../support/agent.ts";

Deno.test("hosts: addresses get the default gRPC port, and keep an explicit one", () => {
  assert.equal(normalizeAddress("node-1"), `node-1:${DEFAULT_GRPC_PORT}`);
  assert.equal(normalizeAddress("10.1.2.3:7000"), "10.1.2.3:7000");
  assert.equal(normalizeAddress("[::1]"), `[::1]:${DEFAULT_GRPC_PORT}`);
  assert.equal(normalizeAddress("[fd00::1]:7000"), "[fd00::1]:7000");
  assert.equal(normalizeAddress("fd00::1"), `[fd00::1]:${DEFAULT_GRPC_PORT}`);
  assert.equal(
    normalizeAddress("unix:///run/ioeventd/ioeventd.sock"),
    "unix:///run/ioeventd/ioeventd.sock",
  );
  assert.throws(() => normalizeAddress("node:99999"), HostListError);
  assert.throws(() => normalizeAddress("node:http"), HostListError);
  assert.throws(() => normalizeAddress(":7000"), HostListError);
});

Deno.test("hosts: a file with names and comments, a list, stdin, merged in order", () => {
  const dir = tempDir();
  try {
    const file = join(dir, "hosts");
    writeFileSync(file, "# batch 1\nrack1-a = 127.0.0.11:7001\n\n  127.0.0.12  # unnamed\n");
    const hosts = loadHosts([file, "c=127.0.0.13:7003,127.0.0.14", "-"], () => "d=node-d\n");
    assert.deepEqual(hosts, [
      { name: "rack1-a", address: "127.0.0.11:7001" },
      { name: "127.0.0.12", address: `127.0.0.12:${DEFAULT_GRPC_PORT}` },
      { name: "c", address: "127.0.0.13:7003" },
      { name: "127.0.0.14", address: `127.0.0.14:${DEFAULT_GRPC_PORT}` },
      { name: "d", address: `node-d:${DEFAULT_GRPC_PORT}` },
    ]);
  } finally {
    removeDir(dir);
  }
});

Deno.test("hosts: an empty list, a duplicate and a missing file are refused", () => {
  assert.throws(() => loadHosts([","]), /empty/);
  assert.throws(() => loadHosts(["a=h1,a=h2"]), /listed twice/);
  assert.throws(() => loadHosts(["./no/such/hosts"]), /no such hosts file/);
});
