using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Mcp;

namespace Microagent.Tests.Mcp;

/// <summary>The tools of the CLI's profiles, kernel check and image tag verbs, through the catalog (no transport).</summary>
public sealed class ToolCatalogParityTests : IDisposable
{
    private readonly string _state = Path.Combine(Path.GetTempPath(), $"ma-mcp-parity-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly ToolCatalog _catalog;

    public ToolCatalogParityTests() => _catalog = ToolCatalog.Create(new StatePaths(_state));

    public void Dispose()
    {
        if (Directory.Exists(_state)) Directory.Delete(_state, true);
    }

    private Task<JsonNode?> Call(string tool, string json) =>
        _catalog.Find(tool)!.Handler(new ToolCall(tool, JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json), new Progress<string>(), CancellationToken.None));

    [Fact]
    public async Task Profiles_list_is_the_library_table()
    {
        var r = await Call("profiles_list", "{}");
        var names = r!["profiles"]!.AsArray().Select(p => p!["name"]!.GetValue<string>()).ToList();
        Assert.Equal(new[] { "tiny", "small", "medium", "large" }, names);
        Assert.Equal(256, r["profiles"]![0]!["memory_mib"]!.GetValue<int>());
    }

    [Fact]
    public async Task Kernel_check_says_what_is_wrong_in_an_empty_state()
    {
        var r = await Call("kernel_check", "{}");
        Assert.False(r!["ok"]!.GetValue<bool>());
        Assert.Contains("no kernel", r["problem"]!.GetValue<string>());
    }

    [Fact]
    public async Task Images_tag_of_an_unknown_image_is_not_found_and_halt_takes_a_reason()
    {
        var e = await Assert.ThrowsAsync<MicroagentException>(() => Call("images_tag", """{"source":"nothing:here","target":"x:1"}"""));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        foreach (string tool in new[] { "workspace_halt", "workspace_kill" })
            Assert.NotNull(_catalog.Find(tool)!.InputSchema["properties"]!["reason"]);
    }
}
