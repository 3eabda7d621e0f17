using System.Text.Json.Nodes;

namespace Microagent.Mcp;

/// <summary>
/// The MCP audit trail: one JSON line per tool call that touched the host (a host path or host target) or was denied,
/// appended to <c>&lt;state&gt;/mcp-audit.jsonl</c> (file 0600, directory 0700). A line holds the time, the tool, the
/// decision (<c>allowed</c> or <c>denied</c>), the host paths and targets involved, and the error kind when the call
/// failed; never file contents or any other argument.
/// </summary>
public sealed class McpAudit(StatePaths paths)
{
    /// <summary>The audit file's name in the state directory.</summary>
    public const string FileName = "mcp-audit.jsonl";

    private readonly Lock _gate = new();

    /// <summary>The audit file.</summary>
    public string FilePath { get; } = Path.Combine(paths.Root, FileName);

    /// <summary>Appends one line (whole lines only: one writer at a time, one write per line).</summary>
    public void Record(string tool, bool denied, IReadOnlyList<string> hostPaths, IReadOnlyList<string> targets, string? error)
    {
        var line = new JsonObject
        {
            ["time"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture),
            ["tool"] = tool,
            ["decision"] = denied ? "denied" : "allowed",
            ["paths"] = new JsonArray([.. hostPaths.Select(p => (JsonNode)p)]),
            ["targets"] = new JsonArray([.. targets.Select(t => (JsonNode)t)]),
            ["error"] = error,
        };
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(line.ToJsonString() + "\n");
        lock (_gate)
        {
            StatePaths.EnsureDirectory(Path.GetDirectoryName(FilePath)!);
            using var f = new FileStream(FilePath, new FileStreamOptions
            {
                Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            f.Write(bytes);
        }
    }
}
