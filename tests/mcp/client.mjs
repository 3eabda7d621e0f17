// Drives `microagent serve mcp` as a real MCP client would, with the official TypeScript SDK.
// Usage: node client.mjs SCENARIO   (MICROAGENT_BIN and MICROAGENT_STATE_DIR come from the environment; MCP_SERVER_ARGS, a JSON
// array, adds `serve mcp` flags such as --host-root; MCP_ROOT and MCP_OUTSIDE name the directories the trust scenarios use)
// Prints one JSON document with what it observed; exits non-zero on any protocol-level failure.
// Every tool's inputSchema and outputSchema is compiled with ajv (JSON Schema 2020-12, strict), and every
// structuredContent received is validated against its tool's outputSchema (recorded per call as `schemaErrors`).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const scenario = process.argv[2] ?? "basic";
const bin = process.env.MICROAGENT_BIN ?? "bin/microagent";

const transport = new StdioClientTransport({
  command: bin,
  args: ["serve", "mcp", ...JSON.parse(process.env.MCP_SERVER_ARGS ?? "[]")],
  env: { ...process.env, NO_COLOR: "1" },
  stderr: "inherit",
});
const client = new Client({ name: "microagent-tests", version: "1.0.0" });
await client.connect(transport);

const out = { server: client.getServerVersion(), scenario };

// Strict: unknown keywords, formats or ill-typed schemas are errors, not warnings.
const ajv = new Ajv2020({ strict: true, strictTypes: true, strictTuples: true, allowUnionTypes: true, allErrors: true });
addFormats(ajv);
const outputValidators = new Map();

async function listAndCompileTools() {
  const tools = (await client.listTools()).tools;
  const compiled = tools.map((t) => {
    const r = { name: t.name, title: t.title ?? null, annotations: t.annotations ?? null, required: t.inputSchema.required ?? [],
      type: t.inputSchema.type, outputType: t.outputSchema?.type ?? null, inputError: null, outputError: null };
    try { ajv.compile(t.inputSchema); } catch (e) { r.inputError = String(e.message ?? e); }
    try {
      if (!t.outputSchema) throw new Error("no outputSchema");
      outputValidators.set(t.name, ajv.compile(t.outputSchema));
    } catch (e) { r.outputError = String(e.message ?? e); }
    return r;
  });
  return compiled;
}

async function call(name, args = {}, extra = {}) {
  const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 300_000, ...extra });
  const body = r.structuredContent ?? JSON.parse(r.content[0].text);
  const validate = outputValidators.get(name);
  let schemaErrors = r.structuredContent === undefined ? ["no structuredContent"] : null;
  if (!validate) schemaErrors = ["no compiled outputSchema"];
  else if (r.structuredContent !== undefined && !validate(r.structuredContent)) schemaErrors = validate.errors;
  const textMatches = JSON.stringify(JSON.parse(r.content[0].text)) === JSON.stringify(r.structuredContent);
  return { isError: r.isError ?? false, body, schemaErrors, textMatches };
}

// Lists processes in the guest whose command line is exactly `sleep 600` (busybox: no pgrep needed).
const findSleep = `for f in /proc/[0-9]*/cmdline; do c=$(tr '\\0' ' ' < "$f" 2>/dev/null); case "$c" in "sleep 600 ") echo "$f";; esac; done; true`;

try {
  if (scenario === "basic") {
    out.tools = await listAndCompileTools();
    out.ping = await call("microagent_ping");
    out.describe = await call("microagent_describe");
    const progress = [];
    out.run = await call("workspace_run", { command: "echo hello; echo oops >&2; exit 3", env: { A: "1" } },
      { onprogress: (p) => progress.push(p.message ?? "") });
    out.runStdin = await call("workspace_run", { argv: ["sh", "-c", "cat; echo \"A=$A\""], stdin: "from-stdin\n", env: { A: "x" } });
    out.badArgs = await call("workspace_run", { argv: ["true"], command: "true" });
    out.progress = progress;
  } else if (scenario === "parallel") {
    await listAndCompileTools();
    const calls = [];
    for (let i = 0; i < 16; i++) calls.push(call("microagent_ping"));
    calls.push(call("doctor_check"));
    calls.push(call("workspace_run", { argv: ["echo", "one"] }));
    calls.push(call("workspace_run", { argv: ["echo", "two"] }));
    out.results = await Promise.all(calls);
  } else if (scenario === "lifecycle") {
    await listAndCompileTools();
    const fs = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = process.env.MCP_ROOT ?? fs.mkdtempSync(path.join(os.tmpdir(), "ma-mcp-"));
    fs.writeFileSync(path.join(dir, "in.txt"), "copied in\n", { mode: 0o640 });
    const name = `mcp-${process.pid}`;
    const progress = [];
    const execProgress = [];
    // Port 9 on loopback has no listener here: a required, fail-closed mediation target that is unreachable.
    out.create = await call("workspace_create", { name, profile: "tiny", env: { GREETING: "hi" }, setup: ["echo setup-ran > /root/setup.txt"],
      mediation: "2048=127.0.0.1:9" },
      { onprogress: (p) => progress.push(p.message ?? "") });
    out.createAgain = await call("workspace_create", { name });
    out.badSize = await call("workspace_create", { name: `${name}-x`, memory_mib: 1 });
    out.start = await call("workspace_start", { name }, { onprogress: (p) => progress.push(p.message ?? "") });
    out.exec = await call("workspace_exec", { name, command: "echo $GREETING; cat /root/setup.txt; exit 5" },
      { onprogress: (p) => execProgress.push(p.message ?? "") });
    out.cpIn = await call("workspace_cp", { name, direction: "to_guest", host_path: path.join(dir, "in.txt"), guest_path: "/tmp/in.txt" });
    out.catIn = await call("workspace_exec", { name, argv: ["sh", "-c", "cat /tmp/in.txt; stat -c %a /tmp/in.txt"] });
    await call("workspace_exec", { name, argv: ["sh", "-c", "echo from-guest > /tmp/out.txt"] });
    out.cpOut = await call("workspace_cp", { name, direction: "from_guest", host_path: path.join(dir, "out.txt"), guest_path: "/tmp/out.txt" });
    out.outContent = fs.readFileSync(path.join(dir, "out.txt"), "utf8");
    out.status = await call("workspace_status", { name });
    out.list = await call("workspace_list");
    out.pause = await call("workspace_pause", { name, reason: "mcp review" });
    out.execPaused = await call("workspace_exec", { name, argv: ["true"] });
    out.resume = await call("workspace_resume", { name });
    out.execResumed = await call("workspace_exec", { name, argv: ["true"] });
    out.halt = await call("workspace_halt", { name });
    out.logs = await call("workspace_logs", { name, tail_lines: 5 });
    out.events = await call("workspace_events", { name, limit: 3 });
    out.eventsNext = await call("workspace_events", { name, after_index: out.events.body.result.next_index });
    out.templates = (await client.listResourceTemplates()).resourceTemplates;
    out.resources = (await client.listResources()).resources.filter((r) => r.uri.includes(`/${name}/`));
    out.logResource = (await client.readResource({ uri: `microagent://workspaces/${name}/logs` })).contents;
    out.eventResource = (await client.readResource({ uri: `microagent://workspaces/${name}/events` })).contents;
    try { await client.readResource({ uri: `microagent://workspaces/${name}-none/logs` }); out.missingResource = null; }
    catch (e) { out.missingResource = { code: e.code ?? null, message: String(e.message) }; }
    out.execHalted = await call("workspace_exec", { name, argv: ["true"] });
    out.delete = await call("workspace_delete", { name });
    out.deleteAgain = await call("workspace_delete", { name });
    out.statusGone = await call("workspace_status", { name });
    out.images = await call("images_list");
    out.progress = progress;
    out.execProgress = execProgress;
    if (!process.env.MCP_ROOT) fs.rmSync(dir, { recursive: true, force: true });
  } else if (scenario === "trust") {
    // Launched with --host-root MCP_ROOT --allow-host-target 127.0.0.1:9; MCP_OUTSIDE is outside the root.
    await listAndCompileTools();
    const fs = await import("node:fs");
    const path = await import("node:path");
    const root = process.env.MCP_ROOT, outside = process.env.MCP_OUTSIDE;
    const name = `mcp-trust-${process.pid}`;
    out.describe = await call("microagent_describe");
    out.vsockDenied = await call("workspace_create", { name, vsock: ["5000=127.0.0.1:22"] });
    out.mediationDenied = await call("workspace_create", { name, mediation: "2048=127.0.0.1:23" });
    out.create = await call("workspace_create", { name, profile: "tiny", vsock: ["5000=127.0.0.1:9"] });
    try {
      out.start = await call("workspace_start", { name });
      await call("workspace_exec", { name, argv: ["sh", "-c", "echo from-guest > /tmp/out.txt"] });
      const cp = (direction, host_path, extra = {}) =>
        call("workspace_cp", { name, direction, host_path, guest_path: direction === "to_guest" ? "/tmp/in.txt" : "/tmp/out.txt", ...extra });
      out.toOutside = await cp("to_guest", path.join(outside, "secret.txt"));
      out.fromOutside = await cp("from_guest", path.join(outside, "stolen.txt"));
      out.toDotDot = await cp("to_guest", path.join(root, "..", path.basename(outside), "secret.txt"));
      out.toLinkOut = await cp("to_guest", path.join(root, "link-out-file"));
      out.fromLinkOutFile = await cp("from_guest", path.join(root, "link-out-file"), { overwrite: true });
      out.fromLinkOutDir = await cp("from_guest", path.join(root, "link-out-dir"));
      out.fromExisting = await cp("from_guest", path.join(root, "existing.txt"));
      out.existingAfterRefusal = fs.readFileSync(path.join(root, "existing.txt"), "utf8");
      out.fromOverwrite = await cp("from_guest", path.join(root, "existing.txt"), { overwrite: true });
      out.existingAfterOverwrite = fs.readFileSync(path.join(root, "existing.txt"), "utf8");
      out.fromIntoDir = await cp("from_guest", root);
      out.toInside = await cp("to_guest", path.join(root, "in.txt"));
      out.catIn = await call("workspace_exec", { name, argv: ["cat", "/tmp/in.txt"] });
      out.imageOutside = await call("images_pull", { ref: `oci:${outside}` });
    } finally {
      out.delete = await call("workspace_delete", { name, force: true });
    }
  } else if (scenario === "tools") {
    // Launched with --tools minimal --deny-tool workspace_exec (or --read-only): what is listed, and what a call to the rest gets.
    out.tools = (await listAndCompileTools()).map((t) => t.name);
    for (const tool of JSON.parse(process.env.MCP_TRY_TOOLS ?? "[]")) {
      const r = await client.callTool({ name: tool, arguments: { name: `mcp-tools-${process.pid}` } });
      out[tool] = { isError: r.isError ?? false, body: r.structuredContent ?? JSON.parse(r.content[0].text) };
    }
    out.describe = await call("microagent_describe");
  } else if (scenario === "cancel") {
    await listAndCompileTools();
    const name = `mcp-cancel-${process.pid}`;
    out.create = await call("workspace_create", { name, profile: "tiny" });
    out.start = await call("workspace_start", { name });
    try {
      // The exec reports its output as progress: "started" proves that `sleep 600` runs before the call is cancelled.
      const abort = new AbortController();
      let started;
      const running = new Promise((resolve) => { started = resolve; });
      const pending = call("workspace_exec", { name, command: "echo started; exec sleep 600" }, {
        signal: abort.signal,
        onprogress: (p) => { if ((p.message ?? "").includes("started")) started(); },
      }).then((r) => ({ settled: "resolved", r }), (e) => ({ settled: "rejected", name: e?.name ?? null, message: String(e?.message ?? e) }));
      await running;
      out.before = await call("workspace_exec", { name, command: findSleep });
      const t0 = Date.now();
      abort.abort("test cancels the call");
      out.cancelled = await pending;
      out.cancelledAfterMs = Date.now() - t0;
      // The server kills the command when the call is cancelled; wait (bounded) until the guest shows no such process.
      out.probes = 0;
      for (;;) {
        out.after = await call("workspace_exec", { name, command: findSleep });
        out.probes++;
        if (out.after.body.result.stdout === "" || Date.now() - t0 > 20_000) break;
      }
      out.goneAfterMs = Date.now() - t0;
      out.stillServing = await call("workspace_exec", { name, argv: ["echo", "alive"] });
    } finally {
      out.delete = await call("workspace_delete", { name, force: true });
    }
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
} finally {
  await client.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
