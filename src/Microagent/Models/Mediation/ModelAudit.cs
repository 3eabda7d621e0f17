using System.Text.Json.Serialization;
using Microagent.Tools;

namespace Microagent.Models.Mediation;

/// <summary>One mediated request, one line of the model audit (docs/ARCHITECTURE.md "Model mediation"): facts and outcome, no prompt text.</summary>
internal sealed record ModelAuditRecord
{
    /// <summary>When the request's head was read.</summary>
    public DateTimeOffset Time { get; init; }
    /// <summary>The mediator's id for it.</summary>
    public required string RequestId { get; init; }
    /// <summary>The workspace.</summary>
    public required string Workspace { get; init; }
    /// <summary>The runner it reached or would have.</summary>
    public string? Worker { get; init; }
    /// <summary>HTTP method (null when the request could not be read).</summary>
    public string? Method { get; init; }
    /// <summary>Request path.</summary>
    public string? Path { get; init; }
    /// <summary>Capability of the path.</summary>
    public string? Capability { get; init; }
    /// <summary>The body's model.</summary>
    public string? Model { get; init; }
    /// <summary>Whether it asked for a stream.</summary>
    public bool Stream { get; init; }
    /// <summary><c>allow</c>, <c>deny</c>, <c>error</c> (the policy could not decide) or <c>invalid</c> (the request could not be read).</summary>
    public required string Decision { get; init; }
    /// <summary>Why.</summary>
    public required string Reason { get; init; }
    /// <summary>The rule (or decider) that decided.</summary>
    public string? Rule { get; init; }
    /// <summary>The limit exceeded, when one denied it.</summary>
    public string? Limit { get; init; }
    /// <summary>The status the guest got.</summary>
    public int Status { get; init; }
    /// <summary>Request bytes from the guest (head and body).</summary>
    public long RequestBytes { get; init; }
    /// <summary>Response bytes to the guest (head and body).</summary>
    public long ResponseBytes { get; init; }
    /// <summary>Milliseconds from the head to the end of the response.</summary>
    public long DurationMs { get; init; }
    /// <summary>How the exchange ended when not in a complete response (<c>runner-reset</c>, <c>guest-gone</c>, <c>cancelled</c>).</summary>
    public string? End { get; init; }
}

/// <summary>
/// The model audit file (0600): one JSON line per request, appended; bounded at <see cref="JsonlAuditFile{T}.MaxBytes"/> (further
/// records are counted and dropped, logged once) so a guest cannot fill the host disk. Never throws: the audit must not take
/// the mediator down. The writing is <see cref="JsonlAuditFile{T}"/>'s.
/// </summary>
internal sealed class ModelAudit(string path, Action<string>? log = null)
    : JsonlAuditFile<ModelAuditRecord>(path, ModelMediationJson.Default.ModelAuditRecord, "model audit", log);

/// <summary>Source-generated JSON of the audit lines (camelCase, as the egress audit).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ModelAuditRecord))]
internal sealed partial class ModelMediationJson : JsonSerializerContext;
