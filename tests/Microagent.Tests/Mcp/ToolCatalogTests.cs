using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Mcp;

namespace Microagent.Tests.Mcp;

/// <summary>The MCP tool layer against the library, without a transport.</summary>
public sealed class ToolCatalogTests
{
    private static readonly ToolCatalog Catalog = ToolCatalog.Create(new StatePaths(Path.Combine(Path.GetTempPath(), "ma-mcp-unit")));

    private static ToolCall Call(string tool, string json) =>
        new(tool, JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json), new Progress<string>(), CancellationToken.None);

    [Fact]
    public void Every_tool_name_is_accepted_by_every_client_and_unique()
    {
        Assert.NotEmpty(Catalog.Tools);
        Assert.All(Catalog.Tools, t => Assert.Matches(ToolDefinition.NamePattern, t.Name));
        Assert.Equal(Catalog.Tools.Count, Catalog.Tools.Select(t => t.Name).Distinct(StringComparer.Ordinal).Count());
        // The pattern itself is the strictest one a mainstream client applies (Claude Desktop's).
        Assert.Equal("^[a-zA-Z0-9_-]{1,64}$", ToolDefinition.NamePattern);
        Assert.DoesNotMatch(ToolDefinition.NamePattern, "workspace.create");
    }

    [Fact]
    public void Resource_ranges_in_input_schemas_are_the_library_limits()
    {
        var limits = Microagent.Workspaces.WorkspaceLimits.All.ToDictionary(l => l.Field);
        int checkedCount = 0;
        foreach (var tool in Catalog.Tools)
        {
            if (tool.InputSchema["properties"] is not JsonObject props) continue;
            foreach (var (name, schema) in props)
            {
                if (!limits.TryGetValue(name, out var limit) || name is "timeout_ms" or "max_output_bytes") continue;
                Assert.Equal(limit.Min, schema!["minimum"]!.GetValue<long>());
                if (limit.Bounded) Assert.Equal(limit.Max, schema["maximum"]!.GetValue<long>());
                checkedCount++;
            }
        }
        Assert.True(checkedCount >= 8, $"only {checkedCount} limited arguments found");
    }

    [Fact]
    public void Every_tool_has_a_strict_input_schema_a_title_and_a_description()
    {
        Assert.All(Catalog.Tools, t =>
        {
            Assert.Equal("object", t.InputSchema["type"]!.GetValue<string>());
            Assert.False(t.InputSchema["additionalProperties"]!.GetValue<bool>());
            Assert.False(string.IsNullOrWhiteSpace(t.Description));
            Assert.False(string.IsNullOrWhiteSpace(t.Title));
        });
    }

    [Fact]
    public void Every_tool_has_an_output_schema_of_the_envelope_and_all_five_annotations()
    {
        Assert.All(Catalog.Tools, t =>
        {
            var protocol = McpServerHost.ToProtocol(t);
            var output = JsonNode.Parse(protocol.OutputSchema!.Value.GetRawText())!;
            Assert.Equal("object", output["type"]!.GetValue<string>());
            Assert.Equal(["ok", "result", "error", "meta"], output["properties"]!.AsObject().Select(p => p.Key));
            Assert.NotNull(output["properties"]!["result"]!["type"]);
            var a = protocol.Annotations!;
            Assert.Equal(t.Title, a.Title);
            Assert.NotNull(a.ReadOnlyHint);
            Assert.NotNull(a.DestructiveHint);
            Assert.NotNull(a.IdempotentHint);
            Assert.NotNull(a.OpenWorldHint);
            if (a.ReadOnlyHint == true) Assert.False(a.DestructiveHint);
        });
    }

    [Theory]
    [InlineData("workspace_status", true, false)]
    [InlineData("workspace_stats", true, false)]
    [InlineData("workspace_ps", true, false)]
    [InlineData("workspace_exec", false, true)]
    [InlineData("workspace_delete", false, true)]
    [InlineData("workspace_create", false, false)]
    [InlineData("images_pull", false, false)]
    public void Annotations_say_what_the_tool_does(string name, bool readOnly, bool destructive)
    {
        var hints = Catalog.Find(name)!.Hints;
        Assert.Equal((readOnly, destructive), (hints.ReadOnly, hints.Destructive));
        Assert.Equal(name is "workspace_create" or "images_pull", hints.OpenWorld);
    }

    [Fact]
    public void Result_schemas_are_exported_from_the_serialized_types()
    {
        var exec = Catalog.Find("workspace_exec")!.ResultSchema["properties"]!.AsObject();
        Assert.Equal(["status", "exit_code", "signal", "stdout", "stderr", "stdout_truncated", "stderr_truncated", "duration_ms", "error", "oom_killed", "note"],
            exec.Select(p => p.Key));
        var status = Catalog.Find("workspace_status")!.ResultSchema["properties"]!.AsObject();
        Assert.Contains("exec_ready", status.Select(p => p.Key));
        Assert.Contains("memory_mib", status["config"]!["properties"]!.AsObject().Select(p => p.Key)); // as the arguments spell it
        var state = status["state"]!.ToJsonString();
        Assert.Contains("\"running\"", state);
    }

    [Fact]
    public void Stats_tools_export_the_sample_and_take_the_library_interval()
    {
        var stats = Catalog.Find("workspace_stats")!;
        var props = stats.ResultSchema["properties"]!.AsObject();
        foreach (string key in new[] { "name", "state", "sampled_at", "interval_ms", "uptime_seconds", "cpu", "host_memory", "guest_memory", "disks",
                     "disk_read_bytes", "disk_write_bytes", "network" })
            Assert.Contains(key, props.Select(p => p.Key));
        Assert.Contains("qemu_rss_bytes", props["host_memory"]!["properties"]!.AsObject().Select(p => p.Key));
        var interval = stats.InputSchema["properties"]!["interval_ms"]!;
        Assert.Equal(Microagent.Workspaces.WorkspaceLimits.StatsIntervalMs.Min, interval["minimum"]!.GetValue<long>());
        Assert.Contains("workspaces", Catalog.Find("workspace_ps")!.ResultSchema["properties"]!.AsObject().Select(p => p.Key));
    }

    [Fact]
    public void Every_local_ref_of_an_output_schema_resolves_inside_it()
    {
        Assert.All(Catalog.Tools, t =>
        {
            var schema = JsonNode.Parse(McpServerHost.ToProtocol(t).OutputSchema!.Value.GetRawText())!;
            foreach (string r in Refs(schema))
            {
                JsonNode? target = schema;
                foreach (string part in r[1..].Split('/', StringSplitOptions.RemoveEmptyEntries))
                    target = target is JsonArray a ? a[int.Parse(part)] : target?[part.Replace("~1", "/").Replace("~0", "~")];
                Assert.True(target is JsonObject, $"{t.Name}: $ref {r} does not resolve");
            }
        });

        static IEnumerable<string> Refs(JsonNode? n) => n switch
        {
            JsonObject o => o.SelectMany(p => p.Key == "$ref" ? [p.Value!.GetValue<string>()] : Refs(p.Value)),
            JsonArray a => a.SelectMany(Refs),
            _ => [],
        };
    }

    [Fact]
    public async Task Ping_returns_the_version()
    {
        var result = await Catalog.Find("microagent_ping")!.Handler(Call("microagent_ping", "{}"));
        Assert.True(result!["pong"]!.GetValue<bool>());
        Assert.Equal(McpServerHost.Version, result["version"]!.GetValue<string>());
    }

    [Fact]
    public void Instructions_name_only_tools_that_exist()
    {
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(McpServerHost.Instructions, "\\b[a-z]+_[a-z_]+\\b"))
            Assert.NotNull(Catalog.Find(m.Value));
    }

    [Fact]
    public void Argv_comes_from_argv_or_command_but_not_both()
    {
        Assert.Equal(["echo", "x"], ToolCatalog.Argv(Call("t", """{"argv":["echo","x"]}"""), "t"));
        Assert.Equal(["/bin/sh", "-c", "echo x"], ToolCatalog.Argv(Call("t", """{"command":"echo x"}"""), "t"));
        Assert.Equal(ErrorKind.Invalid, Assert.Throws<MicroagentException>(() => ToolCatalog.Argv(Call("t", """{"argv":["a"],"command":"b"}"""), "t")).Kind);
        Assert.Equal(ErrorKind.Invalid, Assert.Throws<MicroagentException>(() => ToolCatalog.Argv(Call("t", "{}"), "t")).Kind);
    }

    [Fact]
    public void Typed_accessors_reject_wrong_types_as_invalid()
    {
        var call = Call("t", """{"s":1,"n":"x","b":"yes","a":[1],"m":{"k":2},"big":99}""");
        Assert.Equal("s", Assert.Throws<MicroagentException>(() => call.String("s")).Field);
        Assert.Throws<MicroagentException>(() => call.Integer("n"));
        Assert.Throws<MicroagentException>(() => call.Boolean("b"));
        Assert.Throws<MicroagentException>(() => call.Strings("a"));
        Assert.Equal("m", Assert.Throws<MicroagentException>(() => call.StringMap("m")).Field);
        Assert.Throws<MicroagentException>(() => call.Integer("big", 0, 10));
        Assert.Throws<MicroagentException>(() => call.String("absent", required: true));
        Assert.Null(call.String("absent"));
        Assert.Equal(["A=1"], ToolCatalog.Env(Call("t", """{"env":{"A":"1"}}""")));
    }

    [Fact]
    public void Envelope_carries_ok_result_meta_or_the_cli_error_object()
    {
        var ok = Envelope.Ok(new JsonObject { ["x"] = 1 }, 12);
        Assert.False(ok.IsError);
        var body = JsonNode.Parse(JsonSerializer.Serialize(ok.StructuredContent))!;
        Assert.True(body["ok"]!.GetValue<bool>());
        Assert.Equal(1, body["result"]!["x"]!.GetValue<int>());
        Assert.Equal(12, body["meta"]!["timing_ms"]!.GetValue<long>());

        var err = Envelope.Error(new MicroagentException(ErrorKind.Conflict, "busy", "wait") { Field = "name" }, 3);
        Assert.True(err.IsError);
        var e = JsonNode.Parse(JsonSerializer.Serialize(err.StructuredContent))!["error"]!;
        Assert.Equal("conflict", e["kind"]!.GetValue<string>());
        Assert.Equal("busy", e["message"]!.GetValue<string>());
        Assert.Equal("wait", e["remediation"]!.GetValue<string>());
        Assert.False(e["retryable"]!.GetValue<bool>());
        Assert.Equal("name", e["field"]!.GetValue<string>());
    }

    [Fact]
    public void A_field_that_is_an_argument_is_named_in_the_hint()
    {
        var tool = Catalog.Find("workspace_create")!;
        var named = McpServerHost.ArgumentHint(new MappedError(ErrorKind.Invalid, "too small", "use 128 or more", "memory_mib"), tool);
        Assert.Equal(("memory_mib", "use 128 or more (fix argument 'memory_mib' of workspace_create)"), (named.Field, named.Remediation));
        var other = new MappedError(ErrorKind.Invalid, "bad", null, "not_an_argument");
        Assert.Equal(other, McpServerHost.ArgumentHint(other, tool));
    }

    [Fact]
    public void Mapped_errors_of_unexpected_exceptions_match_the_cli()
    {
        var io = Envelope.Error(ErrorMapping.FromException(new IOException("pipe broke")), 1);
        var e = JsonNode.Parse(JsonSerializer.Serialize(io.StructuredContent))!["error"]!;
        Assert.Equal("transient", e["kind"]!.GetValue<string>());
        Assert.True(e["retryable"]!.GetValue<bool>());
    }
}
