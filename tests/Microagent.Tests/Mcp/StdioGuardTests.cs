using System.Text;
using System.Text.Json.Nodes;
using Microagent.Mcp;

namespace Microagent.Tests.Mcp;

/// <summary>The MCP server over in-memory stdio: garbage gets a parse error, serving goes on, end of input ends it.</summary>
public sealed class StdioGuardTests
{
    [Fact]
    public async Task Garbage_and_oversized_lines_get_parse_errors_and_valid_requests_are_served()
    {
        string input = string.Join('\n',
            "not json at all",
            "",
            """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}""",
            """{"jsonrpc":"2.0","method":"notifications/initialized"}""",
            """{"jsonrpc":"2.0","id":2,"method":"tools/list"}""",
            "{\"unterminated\": ") + "\n";
        var stdin = new System.IO.Pipelines.Pipe();
        var stdout = new System.IO.Pipelines.Pipe();
        var paths = new StatePaths(Path.Combine(Path.GetTempPath(), "ma-mcp-unit"));
        var options = McpServerHost.CreateOptions(ToolCatalog.Create(paths), paths);
        var serving = McpServerHost.RunAsync(options, stdin.Reader.AsStream(), stdout.Writer.AsStream(), CancellationToken.None);
        await stdin.Writer.WriteAsync(Encoding.UTF8.GetBytes(input));

        // A client keeps stdin open until it has its answers; then closing it ends the server.
        var reader = new StreamReader(stdout.Reader.AsStream());
        var lines = new List<JsonNode>();
        while (!lines.Any(l => l["id"]?.GetValue<int>() == 1) || !lines.Any(l => l["id"]?.GetValue<int>() == 2) || lines.Count(l => l["error"]?["code"]?.GetValue<int>() == -32700) < 2)
            lines.Add(JsonNode.Parse((await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20)))!)!);
        await stdin.Writer.CompleteAsync();
        await serving.WaitAsync(TimeSpan.FromSeconds(20));

        var parseErrors = lines.Where(l => l["error"]?["code"]?.GetValue<int>() == -32700).ToList();
        Assert.Equal(2, parseErrors.Count);
        Assert.All(parseErrors, e => Assert.Null(e["id"]));
        Assert.True(lines.Any(l => l["id"]?.GetValue<int>() == 1 && l["result"]?["serverInfo"] is not null), string.Join("\n", lines.Select(l => l.ToJsonString())));
        var list = lines.Single(l => l["id"]?.GetValue<int>() == 2);
        Assert.Contains(list["result"]!["tools"]!.AsArray(), t => t!["name"]!.GetValue<string>() == "workspace_exec");
    }
}
