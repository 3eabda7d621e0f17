using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;

namespace Microagent.Mcp;

/// <summary>Runs one tool call; returns the <c>result</c> part of the envelope.</summary>
public delegate Task<JsonNode?> ToolHandler(ToolCall call);

/// <summary>
/// MCP tool annotations (2025-06-18 <c>ToolAnnotations</c>), stated for what the tool really does: <paramref name="ReadOnly"/> — it
/// changes nothing; <paramref name="Destructive"/> — it may destroy or overwrite state (guest processes, files, disks);
/// <paramref name="Idempotent"/> — repeating it with the same arguments has no further effect; <paramref name="OpenWorld"/> — it
/// reaches beyond this host's state (a remote registry).
/// </summary>
public sealed record ToolHints(bool ReadOnly, bool Destructive, bool Idempotent, bool OpenWorld)
{
    /// <summary>Reads state and changes nothing.</summary>
    public static readonly ToolHints Query = new(ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false);
}

/// <summary>One MCP tool: a stable name, a title, a description, precise JSON schemas of its input and result, and its handler.</summary>
/// <param name="Name">Stable tool name (documented in the README); matches <see cref="NamePattern"/>.</param>
/// <param name="Title">Human-readable name for a client's UI.</param>
/// <param name="Description">What the tool does, for the model.</param>
/// <param name="Hints">Behaviour annotations.</param>
/// <param name="InputSchema">JSON Schema of the arguments (types, enums, required).</param>
/// <param name="ResultSchema">JSON Schema of the envelope's <c>result</c> on success.</param>
/// <param name="Handler">The implementation.</param>
public sealed record ToolDefinition(string Name, string Title, string Description, ToolHints Hints, JsonObject InputSchema, JsonObject ResultSchema,
    ToolHandler Handler)
{
    /// <summary>
    /// What every client accepts as a tool name (Claude Desktop validates <c>^[a-zA-Z0-9_-]{1,64}$</c>; the OpenAI API
    /// <c>^[a-zA-Z0-9_-]+$</c>): one name outside it makes such a client drop the whole server.
    /// </summary>
    public const string NamePattern = "^[a-zA-Z0-9_-]{1,64}$";

    /// <summary>JSON Schema of the whole structured content: the success envelope or the error envelope.</summary>
    public JsonObject OutputSchema { get; } = Envelope.Schema(ResultSchema);
}

/// <summary>The arguments of one call, with typed accessors that fail as <see cref="ErrorKind.Invalid"/>.</summary>
public sealed class ToolCall(string tool, IDictionary<string, JsonElement>? arguments, IProgress<string> progress, CancellationToken ct,
    bool progressRequested = false)
{
    private readonly IDictionary<string, JsonElement> _args = arguments ?? new Dictionary<string, JsonElement>();

    /// <summary>Phase messages forwarded as MCP progress notifications when the client asked for them.</summary>
    public IProgress<string> Progress { get; } = progress;

    /// <summary>The client sent a progress token: long output is worth streaming as progress messages.</summary>
    public bool ProgressRequested { get; } = progressRequested;

    /// <summary>Cancelled when the client cancels the request or the server stops.</summary>
    public CancellationToken Cancellation { get; } = ct;

    /// <summary>Host paths this call read or wrote (or tried to), for the audit trail.</summary>
    internal List<string> HostPaths { get; } = [];

    /// <summary>Host TCP targets this call asked for, for the audit trail.</summary>
    internal List<string> HostTargets { get; } = [];

    /// <summary>True when the argument is present and not null.</summary>
    public bool Has(string name) => _args.TryGetValue(name, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>A string argument; null when absent.</summary>
    public string? String(string name, bool required = false)
    {
        if (!_args.TryGetValue(name, out var v) || v.ValueKind == JsonValueKind.Null)
            return required ? throw Missing(name) : null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw WrongType(name, "a string");
    }

    /// <summary>An optional integer argument checked against a workspace limit (the library's range).</summary>
    public long? Integer(string name, Microagent.Workspaces.WorkspaceLimit limit) => Integer(name, limit.Min, limit.Max);

    /// <summary>An integer argument; null when absent.</summary>
    public long? Integer(string name, long min = long.MinValue, long max = long.MaxValue)
    {
        if (!_args.TryGetValue(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n)) throw WrongType(name, "an integer");
        if (n < min || n > max) throw new MicroagentException(ErrorKind.Invalid, $"{tool}: '{name}' must be between {min} and {max}") { Field = name };
        return n;
    }

    /// <summary>A boolean argument; <paramref name="fallback"/> when absent.</summary>
    public bool Boolean(string name, bool fallback = false)
    {
        if (!_args.TryGetValue(name, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(name, "a boolean"),
        };
    }

    /// <summary>An array-of-strings argument; empty when absent.</summary>
    public string[] Strings(string name)
    {
        if (!_args.TryGetValue(name, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind != JsonValueKind.Array) throw WrongType(name, "an array of strings");
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw WrongType(name, "an array of strings")).ToArray();
    }

    /// <summary>An object of string values (e.g. env); empty when absent.</summary>
    public IReadOnlyDictionary<string, string> StringMap(string name)
    {
        if (!_args.TryGetValue(name, out var v) || v.ValueKind == JsonValueKind.Null) return new Dictionary<string, string>();
        if (v.ValueKind != JsonValueKind.Object) throw WrongType(name, "an object of strings");
        return v.EnumerateObject().ToDictionary(p => p.Name,
            p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw WrongType($"{name}.{p.Name}", "a string"));
    }

    private MicroagentException Missing(string name) =>
        new(ErrorKind.Invalid, $"{tool}: missing required argument '{name}'") { Field = name };

    private MicroagentException WrongType(string name, string expected) =>
        new(ErrorKind.Invalid, $"{tool}: '{name}' must be {expected}") { Field = name.Split('.')[0] };
}
