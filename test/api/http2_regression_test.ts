// Deno 2.9.4–2.9.6 abort the whole process when a client gracefully closes an HTTP/2
// connection that carried ~128+ streams; the project pins 2.9.3 for that. This test keeps
// the pin honest: 2 000 unary calls on one connection, a graceful close, and the agent
// still answers on a new connection.
import assert from "node:assert/strict";
import { AgentClient } from "../../service/cli/client.ts";
import { startAgent, tempDir } from "../support/agent.ts";
import { join } from "node:path";

const opts = { sanitizeOps: false, sanitizeResources: false };

for (const transport of ["tcp", "unix"] as const) {
  Deno.test(
    `http2: 2000 calls on one ${transport} connection, graceful close, agent survives`,
    opts,
    async () => {
      const dir = tempDir();
      const listen = transport === "tcp"
        ? ["127.0.0.1:0"]
        : [`unix://${join(dir, "run", "ioeventd.sock")}`];
      const t = await startAgent({ listen, allowInsecureTcp: true }, dir);
      try {
        const client = new AgentClient(t.agent.server.bound[0]);
        for (let batch = 0; batch < 20; batch++) {
          await Promise.all(Array.from({ length: 100 }, () => client.info()));
        }
        client.close(); // graceful GOAWAY on a connection that carried 2000 streams
        await new Promise((r) => setTimeout(r, 200));
        const again = new AgentClient(t.agent.server.bound[0]);
        const info = await again.info();
        assert.equal(info.apiVersions[0], "ioeventd.v1");
        again.close();
      } finally {
        await t.stop();
      }
    },
  );
}
