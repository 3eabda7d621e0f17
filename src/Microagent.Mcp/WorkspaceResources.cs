using System.Text;
using System.Text.Json;
using Microagent.Errors;
using Microagent.Workspaces;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Microagent.Mcp;

/// <summary>
/// Each workspace's serial console log and event history as MCP resources: listed per workspace, described by the two
/// <see cref="Templates"/>, read on demand from the state directory. URIs are <c>microagent://workspaces/{name}/logs|events</c>.
/// </summary>
public sealed class WorkspaceResources(StatePaths paths)
{
    private const string Prefix = "microagent://workspaces/";

    /// <summary>Longest tail of a serial log returned by one read.</summary>
    public const int MaxLogBytes = 4 * 1024 * 1024;

    /// <summary>The resource templates (RFC 6570 level 1).</summary>
    public static IReadOnlyList<ResourceTemplate> Templates { get; } =
    [
        new() { UriTemplate = Prefix + "{name}/logs", Name = "workspace-logs", Title = "Workspace serial log", MimeType = "text/plain",
                Description = "The guest serial console log of workspace {name} (the current or last boot; the last 4 MiB)." },
        new() { UriTemplate = Prefix + "{name}/events", Name = "workspace-events", Title = "Workspace event history", MimeType = "application/json",
                Description = "Every state change of workspace {name}, oldest first: [{index, workspace, state, previous, detail, observed_at}]." },
    ];

    private WorkspaceManager Workspaces => new(paths);

    /// <summary>The two resources of every workspace.</summary>
    public async Task<IReadOnlyList<Resource>> ListAsync(CancellationToken ct)
    {
        var list = new List<Resource>();
        foreach (var w in await Workspaces.ListAsync(ct).ConfigureAwait(false))
        {
            list.Add(new Resource { Uri = LogsUri(w.Name), Name = $"{w.Name}-logs", Title = $"{w.Name}: serial log", MimeType = "text/plain",
                                    Description = $"Serial console log of workspace {w.Name} ({w.State.WireName()})." });
            list.Add(new Resource { Uri = EventsUri(w.Name), Name = $"{w.Name}-events", Title = $"{w.Name}: events", MimeType = "application/json",
                                    Description = $"State-change history of workspace {w.Name}." });
        }
        return list;
    }

    /// <summary>The log URI of workspace <paramref name="name"/>.</summary>
    public static string LogsUri(string name) => $"{Prefix}{Uri.EscapeDataString(name)}/logs";

    /// <summary>The events URI of workspace <paramref name="name"/>.</summary>
    public static string EventsUri(string name) => $"{Prefix}{Uri.EscapeDataString(name)}/events";

    /// <summary>Reads <paramref name="uri"/>; an unknown URI or workspace is an MCP error (invalid params), other failures are mapped like tool errors.</summary>
    public async Task<ReadResourceResult> ReadAsync(string uri, CancellationToken ct)
    {
        var (name, kind) = Parse(uri) ?? throw new McpProtocolException($"unknown resource '{uri}'; see resources/templates/list", McpErrorCode.InvalidParams);
        try
        {
            string text = kind == "logs" ? await ReadLogAsync(name, ct).ConfigureAwait(false) : await ReadEventsAsync(name, ct).ConfigureAwait(false);
            return new ReadResourceResult
            {
                Contents = [new TextResourceContents { Uri = uri, MimeType = kind == "logs" ? "text/plain" : "application/json", Text = text }],
            };
        }
        catch (WorkspaceNotFoundException e)
        {
            throw new McpProtocolException($"{e.Message} (resource '{uri}')", McpErrorCode.InvalidParams);
        }
        catch (Exception e) when (e is not OperationCanceledException and not McpProtocolException)
        {
            var m = ErrorMapping.FromException(e);
            throw new McpProtocolException($"{m.Kind.WireName()}: {m.Message}" + (m.Remediation is { } r ? $" ({r})" : ""), McpErrorCode.InternalError);
        }
    }

    /// <summary>(name, "logs" | "events") for a URI of one of the templates; null otherwise.</summary>
    internal static (string Name, string Kind)? Parse(string uri)
    {
        if (!uri.StartsWith(Prefix, StringComparison.Ordinal)) return null;
        string[] parts = uri[Prefix.Length..].Split('/');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1] is not ("logs" or "events")) return null;
        return (Uri.UnescapeDataString(parts[0]), parts[1]);
    }

    private async Task<string> ReadLogAsync(string name, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await Workspaces.ReadLogAsync(name, buffer, follow: false, ct).ConfigureAwait(false);
        var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        if (bytes.Length > MaxLogBytes) bytes = bytes[^MaxLogBytes..];
        return Encoding.UTF8.GetString(bytes);
    }

    private async Task<string> ReadEventsAsync(string name, CancellationToken ct)
    {
        var events = new List<IndexedEvent>();
        await foreach (var e in Workspaces.ReadEventsAsync(name, follow: false, ct).ConfigureAwait(false))
            events.Add(IndexedEvent.From(events.Count, e));
        return JsonSerializer.Serialize<IReadOnlyList<IndexedEvent>>(events, McpJson.Context.IReadOnlyListIndexedEvent);
    }
}
