namespace Microagent.Models;

/// <summary>
/// A request described for a dry run (<c>model policy evaluate</c>, MCP <c>model_policy_evaluate</c>): a body (read as the mediator
/// reads it) and/or the facts given directly; a fact given directly wins over the body's.
/// </summary>
public sealed record ModelPolicyDryRunRequest
{
    /// <summary>The workspace the request would come from.</summary>
    public required string Workspace { get; init; }
    /// <summary>HTTP method (default POST).</summary>
    public string Method { get; init; } = "POST";
    /// <summary>Request path, e.g. <c>/v1/chat/completions</c>.</summary>
    public required string Path { get; init; }
    /// <summary>A JSON request body, when there is one.</summary>
    public byte[]? Body { get; init; }
    /// <summary>The runner id the request would reach.</summary>
    public string? Worker { get; init; }
    /// <summary>The model asked for.</summary>
    public string? Model { get; init; }
    /// <summary>Whether it streams.</summary>
    public bool? Stream { get; init; }
    /// <summary>Its max_tokens.</summary>
    public long? MaxTokens { get; init; }
    /// <summary>Its messages.</summary>
    public int? MessageCount { get; init; }
    /// <summary>Its prompt text bytes.</summary>
    public long? TextBytes { get; init; }
    /// <summary>Tool names it offers.</summary>
    public IReadOnlyList<string>? ToolNames { get; init; }
    /// <summary>Its size on the wire (default: the body's length).</summary>
    public long? RequestBytes { get; init; }

    /// <summary>The facts the mediator would see.</summary>
    public ModelRequestFacts ToFacts()
    {
        var f = ModelRequestFacts.FromRequest(Workspace, Method, Path, Body ?? [], worker: Worker, requestId: "dry-run");
        return f with
        {
            Model = Model ?? f.Model, Stream = Stream ?? f.Stream, MaxTokens = MaxTokens ?? f.MaxTokens, MessageCount = MessageCount ?? f.MessageCount,
            TextBytes = TextBytes ?? f.TextBytes, ToolNames = ToolNames ?? f.ToolNames, RequestBytes = RequestBytes ?? f.RequestBytes,
        };
    }
}

/// <summary>A dry run's outcome: the facts decided on and the decision.</summary>
/// <param name="Source">The policy (file path or argument name).</param>
/// <param name="Facts">The request's facts.</param>
/// <param name="Decision">What the policy decides.</param>
/// <param name="Status">The status the guest would get: 200 (forwarded; the runner's own status in truth) or 403.</param>
public sealed record ModelPolicyEvaluation(string Source, ModelRequestFacts Facts, ModelPolicyDecision Decision, int Status);

/// <summary>A validated policy, summarized.</summary>
/// <param name="Source">The policy (file path or argument name).</param>
/// <param name="SchemaVersion">Its schema.</param>
/// <param name="Default">What a request no rule matches gets.</param>
/// <param name="Rules">The rules in order.</param>
public sealed record ModelPolicyReport(string Source, string SchemaVersion, ModelPolicyEffect Default, IReadOnlyList<ModelPolicyRule> Rules)
{
    /// <summary>The report of <paramref name="policy"/>.</summary>
    public static ModelPolicyReport Of(ModelPolicy policy, string source) => new(source, ModelPolicy.SchemaVersion, policy.Default, policy.Rules);
}

/// <summary>Dry runs of a model policy, the one code path of the CLI's <c>model policy</c> verbs and the MCP tools.</summary>
public static class ModelPolicyChecks
{
    /// <summary>Parses <paramref name="text"/> (a bad policy is <see cref="Errors.ErrorKind.Invalid"/>, naming the line and field path).</summary>
    public static ModelPolicyReport Validate(string text, string source) => ModelPolicyReport.Of(ModelPolicy.Parse(text, source), source);

    /// <summary>Parses <paramref name="text"/> and decides <paramref name="request"/> with it.</summary>
    public static ModelPolicyEvaluation Evaluate(string text, string source, ModelPolicyDryRunRequest request)
    {
        var facts = request.ToFacts();
        var decision = ModelPolicy.Parse(text, source).Evaluate(facts);
        return new ModelPolicyEvaluation(source, facts, decision, decision.Allowed ? 200 : 403);
    }
}
