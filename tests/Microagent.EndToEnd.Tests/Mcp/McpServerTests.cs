using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microagent.EndToEnd.Tests.Mcp;

/// <summary>`microagent serve mcp` driven by the official MCP TypeScript SDK client (tests/mcp/client.mjs), and by raw JSON-RPC for malformed input.</summary>
public sealed class McpServerTests
{
    /// <summary>Runs one client scenario against `serve mcp` launched with <paramref name="serverArgs"/>; <paramref name="env"/> adds variables.</summary>
    internal static async Task<JsonElement> RunClientAsync(string scenario, string[]? serverArgs = null, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("node", [Path.Combine(MicroagentCli.RepoRoot, "tests", "mcp", "client.mjs"), scenario])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = Path.Combine(MicroagentCli.RepoRoot, "tests", "mcp"),
        };
        psi.Environment["MICROAGENT_BIN"] = MicroagentCli.Binary;
        psi.Environment["MICROAGENT_STATE_DIR"] = MicroagentCli.StateDir;
        psi.Environment["MCP_SERVER_ARGS"] = JsonSerializer.Serialize(serverArgs ?? []);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        Assert.True(p.ExitCode == 0, $"MCP client failed ({p.ExitCode}): {await stderr}");
        return JsonDocument.Parse(await stdout).RootElement.Clone();
    }

    /// <summary>Every call the client made got structured content valid against its tool's outputSchema, and the same JSON as text.</summary>
    internal static void AssertAllCallsValid(JsonElement r)
    {
        int calls = 0;
        void Visit(string path, JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("schemaErrors", out var errors) && e.TryGetProperty("body", out _))
            {
                calls++;
                Assert.True(errors.ValueKind == JsonValueKind.Null, $"{path}: structuredContent does not match the outputSchema: {errors}");
                Assert.True(e.GetProperty("textMatches").GetBoolean(), $"{path}: text content differs from structuredContent");
                return;
            }
            if (e.ValueKind == JsonValueKind.Object) foreach (var p in e.EnumerateObject()) Visit($"{path}.{p.Name}", p.Value);
            if (e.ValueKind == JsonValueKind.Array) { int i = 0; foreach (var x in e.EnumerateArray()) Visit($"{path}[{i++}]", x); }
        }
        Visit("$", r);
        Assert.True(calls > 0);
    }

    [Fact]
    public async Task Official_client_lists_tools_and_runs_a_command()
    {
        var r = await RunClientAsync("basic");
        Assert.Equal("microagent", r.GetProperty("server").GetProperty("name").GetString());
        var tools = r.GetProperty("tools").EnumerateArray().Select(t => t.GetProperty("name").GetString()).ToList();
        foreach (string name in new[] { "microagent_ping", "microagent_describe", "doctor_check", "workspace_create", "workspace_start",
                     "workspace_exec", "workspace_wait", "workspace_status", "workspace_list", "workspace_logs", "workspace_events",
                     "workspace_result", "workspace_halt", "workspace_kill", "workspace_pause", "workspace_resume", "workspace_quarantine", "workspace_delete", "workspace_cp", "workspace_run",
                     "images_pull", "images_list", "images_tag", "kernel_check", "profiles_list", "volume_create", "volume_list", "volume_inspect", "volume_delete" })
            Assert.Contains(name, tools);
        Assert.All(tools, n => Assert.Matches("^[a-zA-Z0-9_-]{1,64}$", n));
        Assert.Equal(tools.Count, tools.Distinct().Count());
        Assert.All(r.GetProperty("tools").EnumerateArray(), t =>
        {
            string name = t.GetProperty("name").GetString()!;
            Assert.Equal("object", t.GetProperty("type").GetString());
            Assert.Equal("object", t.GetProperty("outputType").GetString());
            Assert.True(t.GetProperty("inputError").ValueKind == JsonValueKind.Null, $"{name} inputSchema: {t.GetProperty("inputError")}");
            Assert.True(t.GetProperty("outputError").ValueKind == JsonValueKind.Null, $"{name} outputSchema: {t.GetProperty("outputError")}");
            Assert.False(string.IsNullOrEmpty(t.GetProperty("title").GetString()));
            var a = t.GetProperty("annotations");
            foreach (string hint in new[] { "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint" })
                Assert.True(a.GetProperty(hint).ValueKind is JsonValueKind.True or JsonValueKind.False, $"{name}: {hint}");
        });
        AssertAllCallsValid(r);

        var ping = r.GetProperty("ping").GetProperty("body");
        Assert.True(ping.GetProperty("ok").GetBoolean());
        Assert.True(ping.GetProperty("meta").GetProperty("timing_ms").GetInt64() >= 0);

        var describe = r.GetProperty("describe").GetProperty("body").GetProperty("result");
        Assert.Equal("qemu", describe.GetProperty("backend").GetString());
        Assert.Contains(describe.GetProperty("operations").EnumerateArray(), o => o.GetProperty("name").GetString() == "workspace_run");

        // A non-zero exit is a result, not a tool error.
        var run = r.GetProperty("run");
        Assert.False(run.GetProperty("isError").GetBoolean());
        var result = run.GetProperty("body").GetProperty("result");
        Assert.Equal(3, result.GetProperty("exit_code").GetInt32());
        Assert.Equal("hello\n", result.GetProperty("stdout").GetString());
        Assert.Equal("oops\n", result.GetProperty("stderr").GetString());
        var progress = r.GetProperty("progress").EnumerateArray().Select(p => p.GetString()!).ToList();
        Assert.Contains("booting a fresh workspace", progress);
        Assert.Contains(progress, p => p.StartsWith("stdout: hello", StringComparison.Ordinal));
        Assert.Contains(progress, p => p.StartsWith("stderr: oops", StringComparison.Ordinal));

        var stdin = r.GetProperty("runStdin").GetProperty("body").GetProperty("result");
        Assert.Equal("from-stdin\nA=x\n", stdin.GetProperty("stdout").GetString());

        var bad = r.GetProperty("badArgs");
        Assert.True(bad.GetProperty("isError").GetBoolean());
        var error = bad.GetProperty("body").GetProperty("error");
        Assert.Equal("invalid", error.GetProperty("kind").GetString());
        Assert.False(error.GetProperty("retryable").GetBoolean());
        Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));
    }

    [Fact]
    public async Task Official_client_drives_a_full_workspace_lifecycle()
    {
        // The copies use a temp directory, so the server is launched with it as a host root; the mediation target is allowed.
        string root = Directory.CreateTempSubdirectory("ma-mcp-").FullName;
        JsonElement r;
        try
        {
            r = await RunClientAsync("lifecycle", ["--host-root", root, "--allow-host-target", "127.0.0.1:9"], new Dictionary<string, string> { ["MCP_ROOT"] = root });
        }
        finally { Directory.Delete(root, recursive: true); }
        AssertAllCallsValid(r);
        static JsonElement Ok(JsonElement call)
        {
            Assert.False(call.GetProperty("isError").GetBoolean(), call.ToString());
            return call.GetProperty("body").GetProperty("result");
        }
        static string Kind(JsonElement call)
        {
            Assert.True(call.GetProperty("isError").GetBoolean(), call.ToString());
            return call.GetProperty("body").GetProperty("error").GetProperty("kind").GetString()!;
        }
        Assert.Equal("prepared", Ok(r.GetProperty("create")).GetProperty("state").GetString());
        Assert.Equal("conflict", Kind(r.GetProperty("createAgain")));
        Assert.Equal("invalid", Kind(r.GetProperty("badSize")));
        var badSize = r.GetProperty("badSize").GetProperty("body").GetProperty("error");
        Assert.Equal("memory_mib", badSize.GetProperty("field").GetString());
        Assert.Contains("argument 'memory_mib'", badSize.GetProperty("remediation").GetString());
        var start = Ok(r.GetProperty("start"));
        Assert.Equal("running", start.GetProperty("state").GetString());
        Assert.True(start.GetProperty("exec_ready").GetBoolean());
        var exec = Ok(r.GetProperty("exec"));
        Assert.Equal(5, exec.GetProperty("exit_code").GetInt32());
        Assert.Equal("hi\nsetup-ran\n", exec.GetProperty("stdout").GetString());
        // With a progress token the output also arrived as progress messages, in order.
        Assert.Equal("hi\nsetup-ran\n", string.Concat(r.GetProperty("execProgress").EnumerateArray().Select(p => p.GetString()!)
            .Where(p => p.StartsWith("stdout: ", StringComparison.Ordinal)).Select(p => p["stdout: ".Length..])));
        Assert.Equal(1, Ok(r.GetProperty("cpIn")).GetProperty("entries").GetInt32());
        Assert.Equal("copied in\n640\n", Ok(r.GetProperty("catIn")).GetProperty("stdout").GetString());
        Assert.Equal("from-guest\n", r.GetProperty("outContent").GetString());
        var status = Ok(r.GetProperty("status"));
        Assert.Equal("running", status.GetProperty("state").GetString());
        Assert.Equal(2048, status.GetProperty("mediation").GetProperty("port").GetInt32());
        var mediation = status.GetProperty("mediation_ready");
        Assert.False(mediation.GetProperty("ready").GetBoolean());
        Assert.Equal("required mediation target is unreachable", mediation.GetProperty("error").GetString());
        Assert.Contains("127.0.0.1:9", mediation.GetProperty("detail").GetString());
        Assert.Contains(Ok(r.GetProperty("list")).GetProperty("workspaces").EnumerateArray(), w => w.GetProperty("state").GetString() == "running");
        var paused = Ok(r.GetProperty("pause"));
        Assert.Equal("paused", paused.GetProperty("state").GetString());
        Assert.Equal("user", paused.GetProperty("pause_cause").GetString());
        Assert.Equal("paused on request: mcp review", paused.GetProperty("detail").GetString());
        Assert.Equal("conflict", Kind(r.GetProperty("execPaused")));
        Assert.Equal("running", Ok(r.GetProperty("resume")).GetProperty("state").GetString());
        Assert.Equal(0, Ok(r.GetProperty("execResumed")).GetProperty("exit_code").GetInt32());
        Assert.Equal("halted", Ok(r.GetProperty("halt")).GetProperty("state").GetString());
        var logs = Ok(r.GetProperty("logs"));
        Assert.InRange(logs.GetProperty("lines").GetArrayLength(), 1, 5);
        var events = Ok(r.GetProperty("events"));
        Assert.Equal(3, events.GetProperty("events").GetArrayLength());
        var next = Ok(r.GetProperty("eventsNext")).GetProperty("events").EnumerateArray().ToList();
        Assert.Equal(3, next[0].GetProperty("index").GetInt32());
        Assert.Equal("halted", next[^1].GetProperty("state").GetString());
        Assert.Equal(["microagent://workspaces/{name}/logs", "microagent://workspaces/{name}/events"],
            r.GetProperty("templates").EnumerateArray().Select(t => t.GetProperty("uriTemplate").GetString()));
        string ws = status.GetProperty("name").GetString()!;
        Assert.Equal(new[] { $"microagent://workspaces/{ws}/logs", $"microagent://workspaces/{ws}/events" },
            r.GetProperty("resources").EnumerateArray().Select(x => x.GetProperty("uri").GetString()));
        var log = Assert.Single(r.GetProperty("logResource").EnumerateArray().ToList());
        Assert.Equal("text/plain", log.GetProperty("mimeType").GetString());
        // The guest's serial log; a warm start (docs/ARCHITECTURE.md "Warm start") restores a VM past its hello, so only the agent's own prefix is common to both.
        Assert.Contains("microagent-agent:", log.GetProperty("text").GetString());
        var history = JsonDocument.Parse(Assert.Single(r.GetProperty("eventResource").EnumerateArray().ToList()).GetProperty("text").GetString()!).RootElement;
        Assert.Equal("prepared", history[0].GetProperty("state").GetString());
        Assert.Equal("halted", history[history.GetArrayLength() - 1].GetProperty("state").GetString());
        Assert.Equal(-32602, r.GetProperty("missingResource").GetProperty("code").GetInt32());
        Assert.Equal("conflict", Kind(r.GetProperty("execHalted")));
        Assert.True(Ok(r.GetProperty("delete")).GetProperty("existed").GetBoolean());
        Assert.False(Ok(r.GetProperty("deleteAgain")).GetProperty("existed").GetBoolean());
        Assert.Equal("not_found", Kind(r.GetProperty("statusGone")));
        Assert.NotEmpty(Ok(r.GetProperty("images")).GetProperty("images").EnumerateArray());
        Assert.NotEmpty(r.GetProperty("progress").EnumerateArray());
        Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));
    }

    [Fact]
    public async Task Cancelling_a_long_exec_kills_it_in_the_guest_promptly()
    {
        var r = await RunClientAsync("cancel");
        AssertAllCallsValid(r);
        static JsonElement Result(JsonElement call) => call.GetProperty("body").GetProperty("result");
        Assert.Equal("running", Result(r.GetProperty("start")).GetProperty("state").GetString());
        Assert.NotEqual("", Result(r.GetProperty("before")).GetProperty("stdout").GetString()); // sleep 600 was running
        var cancelled = r.GetProperty("cancelled");
        Assert.Equal("rejected", cancelled.GetProperty("settled").GetString());
        Assert.InRange(r.GetProperty("cancelledAfterMs").GetInt64(), 0, 2_000);
        Assert.Equal("", Result(r.GetProperty("after")).GetProperty("stdout").GetString()); // no sleep 600 left in the guest
        Assert.InRange(r.GetProperty("goneAfterMs").GetInt64(), 0, 10_000);
        Assert.Equal("alive\n", Result(r.GetProperty("stillServing")).GetProperty("stdout").GetString());
        Assert.True(Result(r.GetProperty("delete")).GetProperty("existed").GetBoolean());
        Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));
    }

    [Fact]
    public async Task Concurrent_calls_are_all_answered()
    {
        var r = await RunClientAsync("parallel");
        var results = r.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(19, results.Count);
        Assert.All(results, x => Assert.True(x.GetProperty("body").GetProperty("ok").GetBoolean(), x.ToString()));
        AssertAllCallsValid(r);
        var outputs = results.Skip(17).Select(x => x.GetProperty("body").GetProperty("result").GetProperty("stdout").GetString()).ToHashSet();
        Assert.Equal(new HashSet<string?> { "one\n", "two\n" }, outputs);
        Assert.Empty(MicroagentCli.QemuProcessesUnder(MicroagentCli.StateDir));
    }

    [Fact]
    public async Task Malformed_requests_get_errors_and_the_server_keeps_serving_until_stdin_closes()
    {
        using var p = MicroagentCli.Start(["serve", "mcp"], redirectStdin: true);
        var stdin = p.StandardInput;
        // Requests are served concurrently: replies may arrive in any order, so keep every one by id.
        var replies = new Dictionary<int, JsonObject>();
        async Task<JsonObject> ReadReplyAsync(int id)
        {
            while (!replies.ContainsKey(id))
            {
                string? line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
                Assert.NotNull(line);
                var msg = JsonNode.Parse(line)!.AsObject();
                if (msg["id"] is { } mid && mid.GetValueKind() == JsonValueKind.Number) replies[mid.GetValue<int>()] = msg;
            }
            return replies[id];
        }

        await stdin.WriteLineAsync("this is not json {");
        await stdin.WriteLineAsync("""{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}""");
        await stdin.FlushAsync();
        string? first = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var parseError = JsonNode.Parse(first!)!;
        Assert.Equal(-32700, parseError["error"]!["code"]!.GetValue<int>());
        Assert.Null(parseError["id"]);
        var init = await ReadReplyAsync(1);
        Assert.Equal("microagent", init["result"]!["serverInfo"]!["name"]!.GetValue<string>());
        await stdin.WriteLineAsync("""{"jsonrpc":"2.0","method":"notifications/initialized"}""");
        await stdin.WriteLineAsync("""{"jsonrpc":"2.0","id":2,"method":"no/such/method"}""");
        await stdin.WriteLineAsync("""{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}""");
        await stdin.WriteLineAsync("""{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"workspace_run","arguments":{"argv":"not-an-array"}}}""");
        await stdin.WriteLineAsync("""{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"microagent_ping","arguments":{}}}""");
        await stdin.FlushAsync();
        Assert.NotNull((await ReadReplyAsync(2))["error"]);
        var unknownTool = await ReadReplyAsync(3);
        Assert.True(unknownTool["error"] is not null || unknownTool["result"]!["isError"]!.GetValue<bool>());
        var badArgs = await ReadReplyAsync(4);
        Assert.True(badArgs["result"]!["isError"]!.GetValue<bool>());
        Assert.Equal("invalid", badArgs["result"]!["structuredContent"]!["error"]!["kind"]!.GetValue<string>());
        var ping = await ReadReplyAsync(5);
        Assert.True(ping["result"]!["structuredContent"]!["ok"]!.GetValue<bool>());

        stdin.Close();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(0, p.ExitCode);
    }
}
