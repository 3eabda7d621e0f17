using Microagent.Mcp;
using ModelContextProtocol;

namespace Microagent.Tests.Mcp;

/// <summary>Workspace logs and events as MCP resources, against an empty state directory.</summary>
public sealed class WorkspaceResourcesTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"ma-res-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void Templates_cover_logs_and_events_and_uris_parse_back()
    {
        Assert.Equal(["microagent://workspaces/{name}/logs", "microagent://workspaces/{name}/events"], WorkspaceResources.Templates.Select(t => t.UriTemplate));
        Assert.Equal(("ws-1", "logs"), WorkspaceResources.Parse(WorkspaceResources.LogsUri("ws-1")));
        Assert.Equal(("a.b", "events"), WorkspaceResources.Parse(WorkspaceResources.EventsUri("a.b")));
        Assert.Null(WorkspaceResources.Parse("microagent://workspaces/x/secrets"));
        Assert.Null(WorkspaceResources.Parse("file:///etc/passwd"));
        Assert.Null(WorkspaceResources.Parse("microagent://workspaces//logs"));
    }

    [Fact]
    public async Task An_empty_state_dir_lists_nothing_and_an_unknown_workspace_is_invalid_params()
    {
        var resources = new WorkspaceResources(new StatePaths(_root));
        Assert.Empty(await resources.ListAsync(CancellationToken.None));
        var e = await Assert.ThrowsAsync<McpProtocolException>(() => resources.ReadAsync(WorkspaceResources.LogsUri("nope"), CancellationToken.None));
        Assert.Equal(McpErrorCode.InvalidParams, e.ErrorCode);
        Assert.Contains("nope", e.Message);
        e = await Assert.ThrowsAsync<McpProtocolException>(() => resources.ReadAsync("microagent://other", CancellationToken.None));
        Assert.Equal(McpErrorCode.InvalidParams, e.ErrorCode);
    }
}
