using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microagent.Mediation;

// Wire shapes of the mediation channel: one JSON object per line (UTF-8, '\n'-terminated), snake_case names.
// Host → agent: WorkRequest. Agent → host: LifecycleSignal (has "signal"), WorkResult (has "request_id" and "status"),
// ConstraintAck (has "constraints_version"). Delivery is at-least-once: a request in flight when the connection breaks is
// re-sent after the agent reconnects, and request_id is the deduplication key on both sides.

/// <summary>A unit of work the host control plane streams to the agent.</summary>
public sealed record WorkRequest
{
    /// <summary>Unique id; the deduplication key when a request is retried after a broken connection.</summary>
    [JsonPropertyName("request_id")] public required string RequestId { get; init; }
    /// <summary>What to do (application-defined).</summary>
    [JsonPropertyName("task")] public string? Task { get; init; }
    /// <summary>Arguments (application-defined JSON).</summary>
    [JsonPropertyName("payload")] public JsonElement? Payload { get; init; }
    /// <summary>Version of the constraints the request was issued under (the agent answers <c>constraints_outdated</c> when it has an older one).</summary>
    [JsonPropertyName("constraints_version")] public string? ConstraintsVersion { get; init; }
    /// <summary>How long the host waits for the result.</summary>
    [JsonPropertyName("deadline_ms")] public long? DeadlineMs { get; init; }
}

/// <summary>The agent's answer to one <see cref="WorkRequest"/>.</summary>
public sealed record WorkResult
{
    /// <summary>The request answered.</summary>
    [JsonPropertyName("request_id")] public required string RequestId { get; init; }
    /// <summary><see cref="WorkStatuses"/>: ok or error.</summary>
    [JsonPropertyName("status")] public required string Status { get; init; }
    /// <summary>Output (application-defined JSON).</summary>
    [JsonPropertyName("output")] public JsonElement? Output { get; init; }
    /// <summary>Why it failed.</summary>
    [JsonPropertyName("error")] public string? Error { get; init; }
}

/// <summary>Result statuses.</summary>
public static class WorkStatuses
{
    /// <summary>Done.</summary>
    public const string Ok = "ok";
    /// <summary>Failed; see <see cref="WorkResult.Error"/>.</summary>
    public const string Error = "error";
}

/// <summary>A lifecycle signal from the agent (told from results by its <c>signal</c> field).</summary>
public sealed record LifecycleSignal
{
    /// <summary>One of <see cref="Signals"/>.</summary>
    [JsonPropertyName("signal")] public required string Signal { get; init; }
    /// <summary>The request it concerns (accepting, completed).</summary>
    [JsonPropertyName("request_id")] public string? RequestId { get; init; }
    /// <summary>Who sent it (hostname/pid), for a host serving many agents.</summary>
    [JsonPropertyName("agent_id")] public string? AgentId { get; init; }
    /// <summary>Free text.</summary>
    [JsonPropertyName("detail")] public string? Detail { get; init; }
}

/// <summary>Signal names.</summary>
public static class Signals
{
    /// <summary>The agent is connected and takes work.</summary>
    public const string Ready = "ready";
    /// <summary>The agent took a request.</summary>
    public const string Accepting = "accepting";
    /// <summary>The agent finished a request (after its result).</summary>
    public const string Completed = "completed";
    /// <summary>The channel broke (sent on reconnect, about the connection before).</summary>
    public const string MediationBroken = "mediation_broken";
    /// <summary>The agent's constraints are older than the request's.</summary>
    public const string ConstraintsOutdated = "constraints_outdated";
    /// <summary>The workspace is quarantined.</summary>
    public const string Quarantined = "quarantined";

    /// <summary>Every signal.</summary>
    public static IReadOnlyList<string> All { get; } = [Ready, Accepting, Completed, MediationBroken, ConstraintsOutdated, Quarantined];
}

/// <summary>The agent acknowledges a constraints version.</summary>
public sealed record ConstraintAck
{
    /// <summary>The version acknowledged.</summary>
    [JsonPropertyName("constraints_version")] public required string ConstraintsVersion { get; init; }
    /// <summary>The agent applies it.</summary>
    [JsonPropertyName("accepted")] public bool Accepted { get; init; } = true;
    /// <summary>Why not.</summary>
    [JsonPropertyName("detail")] public string? Detail { get; init; }
}

/// <summary>A malformed or oversized line on the mediation channel.</summary>
public sealed class MediationProtocolException(string message) : Exception(message);

/// <summary>Source-generated JSON of the mediation wire types (AOT-safe).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(WorkRequest))]
[JsonSerializable(typeof(WorkResult))]
[JsonSerializable(typeof(LifecycleSignal))]
[JsonSerializable(typeof(ConstraintAck))]
internal sealed partial class MediationJson : JsonSerializerContext;
