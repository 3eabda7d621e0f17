using System.Text.Json.Serialization;

namespace Microagent.Models.Mediation;

// The policy URL's exchange (docs/ARCHITECTURE.md "Model mediation", README "Model policy"): the mediator POSTs one
// ModelPolicyQuery per request as application/json and expects a 2xx answer whose body is a ModelPolicyAnswer, within the
// policy timeout. The query carries facts only, never prompt text. Field names are snake_case.

/// <summary>The facts POSTed to a policy URL.</summary>
internal sealed record ModelPolicyQuery(
    string SchemaVersion, string? RequestId, string Workspace, string? Worker, string Method, string Path, string Capability,
    string? Model, bool Stream, long? MaxTokens, int MessageCount, long TextBytes, IReadOnlyList<string> ToolNames, long RequestBytes)
{
    /// <summary>The schema of the query.</summary>
    public const string Schema = "microagent.model_policy_query.v1";

    /// <summary>The query for <paramref name="f"/>.</summary>
    public static ModelPolicyQuery Of(ModelRequestFacts f) => new(Schema, f.RequestId, f.Workspace, f.Worker, f.Method, f.Path, f.Capability,
        f.Model, f.Stream, f.MaxTokens, f.MessageCount, f.TextBytes, f.ToolNames, f.RequestBytes);
}

/// <summary>A policy URL's answer: <c>decision</c> is <c>allow</c> or <c>deny</c>; <c>reason</c> is optional text.</summary>
internal sealed record ModelPolicyAnswer(string? Decision, string? Reason);

/// <summary>Source-generated JSON of the policy URL exchange (snake_case).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ModelPolicyQuery))]
[JsonSerializable(typeof(ModelPolicyAnswer))]
internal sealed partial class ModelPolicyUrlJson : JsonSerializerContext;
