// Transports: the Unix socket (root-only directory, socket mode 0600, a stale socket replaced,
// a long path refused, a foreign file never deleted), plaintext TCP only when asked for and
// then reported, and TLS excluding plaintext.
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkConfig, defaultConfig } from "../../service/config.ts";
import { removeDir, spawnAgent, startAgent, tempDir } from "../support/agent.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const mode = (path: string) => lstatSync(path).mode & 0o777;

Deno.test(
  "unix socket: directory 0700, socket 0600; a stale socket from a killed agent is replaced",
  opts,
  async () => {
    const dir = tempDir();
    try {
      const first = await spawnAgent(dir);
      const socket = join(dir, "run", "ioeventd.sock");
      assert.equal(mode(join(dir, "run")), 0o700);
      assert.ok(lstatSync(socket).isSocket());
      assert.equal(mode(socket), 0o600);
      await first.client.info();
      first.client.close();
      first.child.kill("SIGKILL");
      await first.exited;
      assert.ok(lstatSync(socket).isSocket(), "a crash leaves the socket behind");

      const second = await spawnAgent(dir);
      assert.equal((await second.client.info()).ready, true);
      assert.equal(mode(socket), 0o600);
      second.client.close();
      second.child.kill("SIGTERM");
      assert.equal((await second.exited).code, 0);
    } finally {
      removeDir(dir);
    }
  },
);

Deno.test(
  "unix socket: a directory the agent was given keeps its mode (a 1777 one stays 1777)",
  opts,
  async () => {
    const dir = tempDir();
    const shared = join(dir, "shared");
    try {
      mkdirSync(shared);
      Deno.chmodSync(shared, 0o1777);
      const agent = await spawnAgent(dir, ["--listen", `unix://${join(shared, "agent.sock")}`]);
      try {
        assert.equal(lstatSync(shared).mode & 0o7777, 0o1777, "the given directory untouched");
        assert.equal(mode(join(shared, "agent.sock")), 0o600, "the socket is the agent's only");
      } finally {
        agent.client.close();
        agent.kill("SIGTERM");
        await agent.exited;
      }
    } finally {
      removeDir(dir);
    }
  },
);

Deno.test(
  "unix socket: a path longer than sun_path is refused; a file that is not a socket is left alone",
  opts,
  async () => {
    const dir = tempDir();
    try {
      const long = `unix://${join(dir, "x".repeat(120), "ioeventd.sock")}`;
      await assert.rejects(spawnAgent(dir, ["--listen", long]), /longer than 107 bytes/);

      mkdirSync(join(dir, "run"), { recursive: true, mode: 0o700 });
      const precious = join(dir, "run", "ioeventd.sock");
      writeFileSync(precious, "not a socket");
      await assert.rejects(spawnAgent(dir), /failed to start/);
      assert.equal(readFileSync(precious, "utf8"), "not a socket");
    } finally {
      removeDir(dir);
    }
  },
);

Deno.test("config: TCP is TLS, or plaintext only when explicitly allowed", () => {
  const base = { ...defaultConfig(tempDir()), listen: ["127.0.0.1:0"] };
  assert.throws(() => checkConfig(base), /plaintext TCP: configure tls .* or set allowInsecureTcp/);
  assert.doesNotThrow(() => checkConfig({ ...base, allowInsecureTcp: true }));
  const tls = { cert: "c.pem", key: "k.pem", ca: "ca.pem" };
  assert.throws(() => checkConfig({ ...base, tls }), /tls needs a policyFile/);
  assert.doesNotThrow(() => checkConfig({ ...base, tls, policyFile: "p.json" }));
  assert.throws(
    () => checkConfig({ ...base, tls, policyFile: "p.json", allowInsecureTcp: true }),
    /tls and allowInsecureTcp exclude each other/,
  );
  assert.throws(
    () => checkConfig({ ...base, allowInsecureTcp: true, rateLimitBurst: 0, maxMessageBytes: 1 }),
    /rateLimitBurst must be an integer >= 1; maxMessageBytes must be an integer >= 1024/,
  );
});

Deno.test(
  "plaintext TCP (allowInsecureTcp): served, with a warning in GetAgentInfo naming the role",
  opts,
  async () => {
    const dir = tempDir();
    const t = await startAgent({ listen: ["127.0.0.1:0"], allowInsecureTcp: true }, dir);
    try {
      const info = await t.client.info();
      assert.equal(info.warnings.length, 1);
      assert.match(
        info.warnings[0],
        /^plaintext TCP listener 127\.0\.0\.1:0: callers are not authenticated \(role admin\)$/,
      );
      assert.ok(!existsSync(join(dir, "run", "ioeventd.sock")));
    } finally {
      await t.stop();
      removeDir(dir);
    }
  },
);
