using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
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
    public static async Task RunStdioAsync(StatePaths paths, CancellationToken ct)
    {
        var options = CreateOptions(ToolCatalog.Create(paths));
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

    /// <summary>Server options with list/call handlers bound to <paramref name="catalog"/>.</summary>
    public static McpServerOptions CreateOptions(ToolCatalog catalog) => new()
    {
        ServerInfo = new Implementation { Name = ServerName, Version = Version, Title = "microagent workspaces" },
        ServerInstructions = "Isolated Linux workspaces (small VMs). Use workspace.run for one command in a throwaway VM; " +
                             "workspace.create/start/exec/... for persistent workspaces. Call microagent.describe for the capability manifest.",
        Capabilities = new ServerCapabilities { Tools = new ToolsCapability() },
        Handlers = new McpServerHandlers
        {
            ListToolsHandler = (_, _) => ValueTask.FromResult(new ListToolsResult { Tools = catalog.Tools.Select(ToProtocol).ToList() }),
            CallToolHandler = (request, ct) => CallAsync(catalog, request, ct),
        },
    };

    private static Tool ToProtocol(ToolDefinition t) => new()
    {
        Name = t.Name,
        Description = t.Description,
        InputSchema = JsonSerializer.SerializeToElement(t.InputSchema),
    };

    private static async ValueTask<CallToolResult> CallAsync(ToolCatalog catalog, RequestContext<CallToolRequestParams> request, CancellationToken ct)
    {
        var p = request.Params ?? throw new McpProtocolException("tools/call without params", McpErrorCode.InvalidParams);
        var tool = catalog.Find(p.Name)
            ?? throw new McpProtocolException($"unknown tool '{p.Name}'; call tools/list", McpErrorCode.InvalidParams);
        var sw = Stopwatch.StartNew();
        var progress = new ProgressReporter(request.Server, p.ProgressToken);
        try
        {
            var result = await tool.Handler(new ToolCall(tool.Name, p.Arguments, progress, ct)).ConfigureAwait(false);
            return Envelope.Ok(result, sw.ElapsedMilliseconds);
        }
        catch (MicroagentException e)
        {
            return Envelope.Error(e, sw.ElapsedMilliseconds);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException or JsonException)
        {
            return Envelope.Error(MicroagentException.Permanent($"{tool.Name}: {e.Message}"), sw.ElapsedMilliseconds);
        }
    }

    /// <summary>Forwards phase messages as <c>notifications/progress</c> when the client sent a progress token.</summary>
    private sealed class ProgressReporter(McpServer server, ProgressToken? token) : IProgress<string>
    {
        private int _step;

        public void Report(string value)
        {
            if (token is not { } t) return;
            int step = Interlocked.Increment(ref _step);
            _ = server.NotifyProgressAsync(t, new ProgressNotificationValue { Progress = step, Message = value }, cancellationToken: CancellationToken.None)
                .ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }
}
