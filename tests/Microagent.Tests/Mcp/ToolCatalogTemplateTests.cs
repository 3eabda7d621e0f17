using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Mcp;

namespace Microagent.Tests.Mcp;

/// <summary>The tools of the CLI's <c>template</c> verbs and <c>cold</c> on run/start, through the catalog (no transport, no VM).</summary>
public sealed class ToolCatalogTemplateTests : IDisposable
{
    private readonly string _state = Path.Combine(Path.GetTempPath(), $"ma-mcp-templates-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly ToolCatalog _catalog;

    public ToolCatalogTemplateTests() => _catalog = ToolCatalog.Create(new StatePaths(_state));

    public void Dispose()
    {
        if (Directory.Exists(_state)) Directory.Delete(_state, true);
    }

    private Task<JsonNode?> Call(string tool, string json) =>
        _catalog.Find(tool)!.Handler(new ToolCall(tool, JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json), new Progress<string>(), CancellationToken.None));

    [Fact]
    public async Task Template_list_and_prune_of_an_empty_state_report_nothing()
    {
        Assert.Empty((await Call("template_list", "{}"))!["templates"]!.AsArray());
        var pruned = await Call("template_prune", """{"all":true}""");
        Assert.Empty(pruned!["removed"]!.AsArray());
        Assert.Equal(0, pruned["reclaimed_bytes"]!.GetValue<long>());
    }

    [Fact]
    public void Run_and_start_take_cold_and_template_create_takes_the_run_shape()
    {
        foreach (string tool in new[] { "workspace_run", "workspace_start" })
            Assert.Equal("boolean", _catalog.Find(tool)!.InputSchema["properties"]!["cold"]!["type"]!.GetValue<string>());
        var create = _catalog.Find("template_create")!.InputSchema["properties"]!.AsObject();
        Assert.Equal(["image", "memory_mib", "cpus"], create.Select(p => p.Key));
    }
}
