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
    public void Every_tool_has_a_strict_object_schema_and_a_dotted_name()
    {
        Assert.NotEmpty(Catalog.Tools);
        Assert.All(Catalog.Tools, t =>
        {
            Assert.Matches("^[a-z]+\\.[a-z_.]+$", t.Name);
            Assert.Equal("object", t.InputSchema["type"]!.GetValue<string>());
            Assert.False(t.InputSchema["additionalProperties"]!.GetValue<bool>());
            Assert.False(string.IsNullOrWhiteSpace(t.Description));
        });
        Assert.Equal(Catalog.Tools.Count, Catalog.Tools.Select(t => t.Name).Distinct().Count());
    }

    [Fact]
    public async Task Ping_returns_the_version()
    {
        var result = await Catalog.Find("microagent.ping")!.Handler(Call("microagent.ping", "{}"));
        Assert.True(result!["pong"]!.GetValue<bool>());
        Assert.Equal(McpServerHost.Version, result["version"]!.GetValue<string>());
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
        Assert.Throws<MicroagentException>(() => call.String("s"));
        Assert.Throws<MicroagentException>(() => call.Integer("n"));
        Assert.Throws<MicroagentException>(() => call.Boolean("b"));
        Assert.Throws<MicroagentException>(() => call.Strings("a"));
        Assert.Throws<MicroagentException>(() => call.StringMap("m"));
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

        var err = Envelope.Error(new MicroagentException(ErrorKind.Conflict, "busy", "wait"), 3);
        Assert.True(err.IsError);
        var e = JsonNode.Parse(JsonSerializer.Serialize(err.StructuredContent))!["error"]!;
        Assert.Equal("conflict", e["kind"]!.GetValue<string>());
        Assert.Equal("busy", e["message"]!.GetValue<string>());
        Assert.Equal("wait", e["remediation"]!.GetValue<string>());
        Assert.False(e["retryable"]!.GetValue<bool>());
    }
}
