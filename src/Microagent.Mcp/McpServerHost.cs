using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;
using Microsoft.Extensions.Logging.Abstractions;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Microagent.Mcp;

/// <summary>
/// Serves the <see cref="ToolCatalog"/> over MCP on stdio. Invariants: only protocol goes to stdout
/// (diagnostics go to stderr); a malformed call is answered and serving continues; when the client goes
/// away (stdin closes) the server returns, and every workspace it started for a one-shot run is torn down
/// by that run's own cancellation.
/// </summary>
public static class McpServerHost
{
    /// <summary>Server name announced in <c>initialize</c>.</summary>
    public const string ServerName = "microagent";

    /// <summary>Version of this build.</summary>
    public static string Version { get; } =
        typeof(McpServerHost).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>Runs until the client disconnects or <paramref name="ct"/> is cancelled.</summary>
    public static async Task RunStdioAsync(StatePaths paths, McpLimits limits, CancellationToken ct)
    {
        var options = CreateOptions(ToolCatalog.Create(paths, limits), paths);
        await using var stdin = Console.OpenStandardInput();
        await using var stdout = Console.OpenStandardOutput();
        await RunAsync(options, stdin, stdout, ct).ConfigureAwait(false);
    }

    /// <summary>Serves newline-delimited JSON-RPC from <paramref name="input"/> to <paramref name="output"/> until input ends.</summary>
    internal static async Task RunAsync(McpServerOptions options, Stream input, Stream output, CancellationToken ct)
    {
        var lines = new LineWriter(output);
        var pipe = new System.IO.Pipelines.Pipe();
        var guard = StdioGuard.PumpAsync(input, pipe.Writer, lines, ct);
        await using (var transport = new StreamServerTransport(pipe.Reader.AsStream(), lines, ServerName, NullLoggerFactory.Instance))
        await using (var server = McpServer.Create(transport, options, NullLoggerFactory.Instance))
        {
            await server.RunAsync(ct).ConfigureAwait(false);
        }
        await guard.ConfigureAwait(false);
    }

    /// <summary>What the server tells a client about itself in <c>initialize</c>.</summary>
    public const string Instructions =
        "Isolated Linux workspaces (small VMs). Use workspace_run for one command in a throwaway VM; workspace_create, workspace_start, " +
        "workspace_exec, ... for persistent workspaces. Long calls report progress and can be cancelled. Each workspace's serial log and " +
        "event history are resources (microagent://workspaces/{name}/logs and /events). Call microagent_describe for the capability manifest " +
        "and the limits this server was launched with: host paths must resolve inside its host roots, host targets must be allowed, and " +
        "only the tools listed are callable; a call outside them is refused (a policy error), and only whoever launches the server can change them.";

    /// <summary>
    /// Server options with tool and resource handlers bound to <paramref name="catalog"/> and <paramref name="paths"/>: only the
    /// tools the catalog's limits offer are listed or callable, and calls that touch the host or are denied are audited.
    /// </summary>
    public static McpServerOptions CreateOptions(ToolCatalog catalog, StatePaths paths)
    {
        var tools = catalog.Tools.Select(ToProtocol).ToList();
        var audit = new McpAudit(paths);
        var resources = new WorkspaceResources(paths);
        return new McpServerOptions
        {
            ServerInfo = new Implementation { Name = ServerName, Version = Version, Title = "microagent workspaces" },
            ServerInstructions = Instructions,
            Capabilities = new ServerCapabilities { Tools = new ToolsCapability(), Resources = new ResourcesCapability() },
            Handlers = new McpServerHandlers
            {
                ListToolsHandler = (_, _) => ValueTask.FromResult(new ListToolsResult { Tools = tools }),
                CallToolHandler = (request, ct) => CallAsync(catalog, audit, request, ct),
                ListResourceTemplatesHandler = (_, _) => ValueTask.FromResult(new ListResourceTemplatesResult { ResourceTemplates = [.. WorkspaceResources.Templates] }),
                ListResourcesHandler = async (_, ct) => new ListResourcesResult { Resources = [.. await resources.ListAsync(ct).ConfigureAwait(false)] },
                ReadResourceHandler = async (request, ct) =>
                    await resources.ReadAsync(request.Params?.Uri ?? throw new McpProtocolException("resources/read without a uri", McpErrorCode.InvalidParams), ct)
                        .ConfigureAwait(false),
            },
        };
    }

    /// <summary>The protocol form of a tool: schemas, title and annotations.</summary>
    internal static Tool ToProtocol(ToolDefinition t) => new()
    {
        Name = t.Name,
        Title = t.Title,
        Description = t.Description,
        InputSchema = Element(t.InputSchema),
        OutputSchema = Element(t.OutputSchema),
        Annotations = new ToolAnnotations
        {
            Title = t.Title,
            ReadOnlyHint = t.Hints.ReadOnly,
            DestructiveHint = t.Hints.Destructive,
            IdempotentHint = t.Hints.Idempotent,
            OpenWorldHint = t.Hints.OpenWorld,
        },
    };

    private static JsonElement Element(JsonNode node)
    {
        using var doc = JsonDocument.Parse(node.ToJsonString());
        return doc.RootElement.Clone();
    }

    private static async ValueTask<CallToolResult> CallAsync(ToolCatalog catalog, McpAudit audit, RequestContext<CallToolRequestParams> request,
        CancellationToken ct)
    {
        var p = request.Params ?? throw new McpProtocolException("tools/call without params", McpErrorCode.InvalidParams);
        var tool = catalog.Find(p.Name)
            ?? throw new McpProtocolException($"unknown tool '{p.Name}'; call tools/list", McpErrorCode.InvalidParams);
        var sw = Stopwatch.StartNew();
        if (catalog.Limits.Withheld(tool) is { } why)
        {
            audit.Record(tool.Name, denied: true, [], [], ErrorKind.PolicyDenied.WireName());
            return Envelope.Error(new MicroagentException(ErrorKind.PolicyDenied, why, McpLimits.WithheldRemediation(tool.Name)), sw.ElapsedMilliseconds);
        }
        var progress = new CallProgress(request.Server, p.ProgressToken);
        var call = new ToolCall(tool.Name, p.Arguments, progress, ct, progress.Requested);
        try
        {
            var result = await tool.Handler(call).ConfigureAwait(false);
            await progress.DrainAsync().ConfigureAwait(false);
            Audit(audit, call, tool, null, denied: false);
            return Envelope.Ok(result, sw.ElapsedMilliseconds);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Audit(audit, call, tool, "cancelled", denied: false);
            throw; // notifications/cancelled (or the server stopping): the SDK sends no response
        }
        catch (Exception e) when (e is not McpProtocolException)
        {
            await progress.DrainAsync().ConfigureAwait(false);
            var error = ErrorMapping.FromException(e);
            Audit(audit, call, tool, error.Kind.WireName(), error.Kind == ErrorKind.PolicyDenied);
            return Envelope.Error(ArgumentHint(error, tool), sw.ElapsedMilliseconds);
        }
    }

    /// <summary>Records a call that touched the host (a path or target) or was denied; other calls leave no line.</summary>
    private static void Audit(McpAudit audit, ToolCall call, ToolDefinition tool, string? error, bool denied)
    {
        if (call.HostPaths.Count == 0 && call.HostTargets.Count == 0 && !denied) return;
        audit.Record(tool.Name, denied, call.HostPaths, call.HostTargets, error);
    }

    /// <summary>Names the tool argument at fault (MCP arguments use the library's field names).</summary>
    internal static MappedError ArgumentHint(MappedError e, ToolDefinition tool)
    {
        if (e.Field is not { } field || tool.InputSchema["properties"]?[field] is null) return e;
        string hint = $"fix argument '{field}' of {tool.Name}";
        return e with { Remediation = e.Remediation is { Length: > 0 } r ? $"{r} ({hint})" : hint };
    }
}
