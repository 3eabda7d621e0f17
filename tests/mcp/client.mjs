// Drives `microagent serve mcp` as a real MCP client would, with the official TypeScript SDK.
// Usage: node client.mjs SCENARIO   (MICROAGENT_BIN and MICROAGENT_STATE_DIR come from the environment)
// Prints one JSON document with what it observed; exits non-zero on any protocol-level failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const scenario = process.argv[2] ?? "basic";
const bin = process.env.MICROAGENT_BIN ?? "bin/microagent";

const transport = new StdioClientTransport({
  command: bin,
  args: ["serve", "mcp"],
  env: { ...process.env, NO_COLOR: "1" },
  stderr: "inherit",
});
const client = new Client({ name: "microagent-tests", version: "1.0.0" });
await client.connect(transport);

const out = { server: client.getServerVersion(), scenario };

async function call(name, args = {}, extra = {}) {
  const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 300_000, ...extra });
  return { isError: r.isError ?? false, body: r.structuredContent ?? JSON.parse(r.content[0].text) };
}

try {
  if (scenario === "basic") {
    const tools = await client.listTools();
    out.tools = tools.tools.map((t) => ({ name: t.name, required: t.inputSchema.required ?? [], type: t.inputSchema.type }));
    out.ping = await call("microagent.ping");
    out.describe = await call("microagent.describe");
    const progress = [];
    out.run = await call("workspace.run", { command: "echo hello; echo oops >&2; exit 3", env: { A: "1" } },
      { onprogress: (p) => progress.push(p.message ?? "") });
    out.runStdin = await call("workspace.run", { argv: ["sh", "-c", "cat; echo \"A=$A\""], stdin: "from-stdin\n", env: { A: "x" } });
    out.badArgs = await call("workspace.run", { argv: ["true"], command: "true" });
    out.progress = progress;
  } else if (scenario === "parallel") {
    const calls = [];
    for (let i = 0; i < 16; i++) calls.push(call("microagent.ping"));
    calls.push(call("doctor.check"));
    calls.push(call("workspace.run", { argv: ["echo", "one"] }));
    calls.push(call("workspace.run", { argv: ["echo", "two"] }));
    out.results = await Promise.all(calls);
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
} finally {
  await client.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
