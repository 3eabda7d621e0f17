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
  } else if (scenario === "lifecycle") {
    const fs = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ma-mcp-"));
    fs.writeFileSync(path.join(dir, "in.txt"), "copied in\n", { mode: 0o640 });
    const name = `mcp-${process.pid}`;
    const progress = [];
    // Port 9 on loopback has no listener here: a required, fail-closed mediation target that is unreachable.
    out.create = await call("workspace.create", { name, profile: "tiny", env: { GREETING: "hi" }, setup: ["echo setup-ran > /root/setup.txt"],
      mediation: "2048=127.0.0.1:9" },
      { onprogress: (p) => progress.push(p.message ?? "") });
    out.createAgain = await call("workspace.create", { name });
    out.start = await call("workspace.start", { name }, { onprogress: (p) => progress.push(p.message ?? "") });
    out.exec = await call("workspace.exec", { name, command: "echo $GREETING; cat /root/setup.txt; exit 5" });
    out.cpIn = await call("workspace.cp", { name, direction: "to_guest", host_path: path.join(dir, "in.txt"), guest_path: "/tmp/in.txt" });
    out.catIn = await call("workspace.exec", { name, argv: ["sh", "-c", "cat /tmp/in.txt; stat -c %a /tmp/in.txt"] });
    await call("workspace.exec", { name, argv: ["sh", "-c", "echo from-guest > /tmp/out.txt"] });
    out.cpOut = await call("workspace.cp", { name, direction: "from_guest", host_path: path.join(dir, "out.txt"), guest_path: "/tmp/out.txt" });
    out.outContent = fs.readFileSync(path.join(dir, "out.txt"), "utf8");
    out.status = await call("workspace.status", { name });
    out.list = await call("workspace.list");
    out.halt = await call("workspace.halt", { name });
    out.logs = await call("workspace.logs", { name, tail_lines: 5 });
    out.events = await call("workspace.events", { name, limit: 3 });
    out.eventsNext = await call("workspace.events", { name, after_index: out.events.body.result.next_index });
    out.execHalted = await call("workspace.exec", { name, argv: ["true"] });
    out.delete = await call("workspace.delete", { name });
    out.deleteAgain = await call("workspace.delete", { name });
    out.statusGone = await call("workspace.status", { name });
    out.images = await call("images.list");
    out.progress = progress;
    fs.rmSync(dir, { recursive: true, force: true });
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
} finally {
  await client.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
