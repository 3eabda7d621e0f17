using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Mcp;

namespace Microagent.Tests.Mcp;

/// <summary>The volume tools and the <c>volumes</c> argument, through the catalog (no transport), with the real mke2fs.</summary>
public sealed class ToolCatalogVolumeTests : IDisposable
{
    private readonly string _state = Path.Combine(Path.GetTempPath(), $"ma-mcp-vol-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly ToolCatalog _catalog;

    public ToolCatalogVolumeTests() => _catalog = ToolCatalog.Create(new StatePaths(_state));

    public void Dispose()
    {
        if (Directory.Exists(_state)) Directory.Delete(_state, true);
    }

    private Task<JsonNode?> Call(string tool, string json) =>
        _catalog.Find(tool)!.Handler(new ToolCall(tool, JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json), new Progress<string>(), CancellationToken.None));

    [Fact]
    public async Task Volume_tools_create_list_inspect_delete()
    {
        var created = await Call("volume_create", """{"name":"data","volume_size_mib":16}""");
        Assert.Equal(16, created!["size_mib"]!.GetValue<int>());
        Assert.Equal("data", (await Call("volume_list", "{}"))!["volumes"]![0]!["name"]!.GetValue<string>());
        Assert.False((await Call("volume_inspect", """{"name":"data"}"""))!["in_use"]!.GetValue<bool>());
        Assert.True((await Call("volume_delete", """{"name":"data"}"""))!["existed"]!.GetValue<bool>());
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<MicroagentException>(() => Call("volume_inspect", """{"name":"data"}"""))).Kind);
        Assert.True(_catalog.Find("volume_list")!.Hints.ReadOnly);
        Assert.True(_catalog.Find("volume_delete")!.Hints.Destructive);
    }

    [Fact]
    public async Task Volumes_argument_refuses_host_directories_and_paths_outside_the_roots()
    {
        foreach (string tool in new[] { "workspace_create", "workspace_run" })
            Assert.NotNull(_catalog.Find(tool)!.InputSchema["properties"]!["volumes"]);
        string dir = Directory.CreateTempSubdirectory("ma-mcp-vol-dir-").FullName;
        try
        {
            var e = await Assert.ThrowsAnyAsync<MicroagentException>(() => Call("workspace_create", $$"""{"name":"w","volumes":["{{dir}}:/data"]}"""));
            Assert.Equal(ErrorKind.Invalid, e.Kind);
            Assert.Contains("host directories are not shared", e.Message);
            var outside = await Assert.ThrowsAnyAsync<MicroagentException>(() => Call("workspace_create", $$"""{"name":"w","volumes":["{{dir}}/x.ext4:/data"]}"""));
            Assert.Equal(ErrorKind.PolicyDenied, outside.Kind);
        }
        finally { Directory.Delete(dir, true); }
    }
}
