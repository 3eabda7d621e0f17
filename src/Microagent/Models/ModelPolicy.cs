using System.Text.Json.Serialization;
using Microagent.Models.Mediation;

namespace Microagent.Models;

/// <summary>What a policy rule (or a policy's default) does with a request it matches.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ModelPolicyEffect>))]
public enum ModelPolicyEffect
{
    /// <summary>Forward it (within the rule's limits).</summary>
    [JsonStringEnumMemberName("allow")]
    Allow,
    /// <summary>Answer 403.</summary>
    [JsonStringEnumMemberName("deny")]
    Deny,
}

/// <summary>
/// Which requests a rule is about. Every field is a list of patterns (empty: any); a request matches when every non-empty field
/// has a pattern that matches its fact. A pattern is exact text, or a glob where <c>*</c> is any run of characters (including
/// <c>/</c>) and <c>?</c> one character. Methods compare case-insensitively, everything else exactly. A request without a
/// model (or a worker) has the empty string there, which only <c>*</c> matches.
/// </summary>
public sealed record ModelPolicyMatch
{
    /// <summary>Workspace names.</summary>
    public IReadOnlyList<string> Workspace { get; init; } = [];
    /// <summary>Capabilities (<see cref="ModelCapabilities.All"/>).</summary>
    public IReadOnlyList<string> Capability { get; init; } = [];
    /// <summary>Runner ids (the runner registry's).</summary>
    public IReadOnlyList<string> Worker { get; init; } = [];
    /// <summary>HTTP methods.</summary>
    public IReadOnlyList<string> Method { get; init; } = [];
    /// <summary>Request paths (without query).</summary>
    public IReadOnlyList<string> Path { get; init; } = [];
    /// <summary>The body's <c>model</c>.</summary>
    public IReadOnlyList<string> Model { get; init; } = [];

    /// <summary>Whether <paramref name="facts"/> matches.</summary>
    public bool Matches(ModelRequestFacts facts) =>
        Any(Workspace, facts.Workspace) && Any(Capability, facts.Capability) && Any(Worker, facts.Worker ?? "")
        && Any(Method, facts.Method.ToUpperInvariant(), upper: true) && Any(Path, facts.Path) && Any(Model, facts.Model ?? "");

    private static bool Any(IReadOnlyList<string> patterns, string value, bool upper = false) =>
        patterns.Count == 0 || patterns.Any(p => Glob.Matches(upper ? p.ToUpperInvariant() : p, value));
}

/// <summary>Bounds an allow rule puts on the requests it matches; a request past one is denied, the reason naming the limit.</summary>
public sealed record ModelPolicyLimits
{
    /// <summary>Request bytes on the wire (head and body).</summary>
    public long? MaxRequestBytes { get; init; }
    /// <summary>UTF-8 bytes of prompt text.</summary>
    public long? MaxTextBytes { get; init; }
    /// <summary>Messages.</summary>
    public long? MaxMessages { get; init; }
    /// <summary>The most tokens a request may ask for; a request that does not say (no <c>max_tokens</c>) is denied too.</summary>
    public long? MaxTokens { get; init; }
    /// <summary>false: streamed requests are denied.</summary>
    public bool? Stream { get; init; }
    /// <summary>Tool names a request may offer (null: any; empty: none).</summary>
    public IReadOnlyList<string>? Tools { get; init; }

    /// <summary>The first limit <paramref name="f"/> exceeds, as (limit name, reason), or null.</summary>
    internal (string Limit, string Reason)? Exceeded(ModelRequestFacts f)
    {
        if (MaxRequestBytes is { } rb && f.RequestBytes > rb) return ("max_request_bytes", $"request is {f.RequestBytes} bytes, max_request_bytes is {rb}");
        if (MaxTextBytes is { } tb && f.TextBytes > tb) return ("max_text_bytes", $"prompt text is {f.TextBytes} bytes, max_text_bytes is {tb}");
        if (MaxMessages is { } mm && f.MessageCount > mm) return ("max_messages", $"{f.MessageCount} messages, max_messages is {mm}");
        if (MaxTokens is { } mt && f.MaxTokens is null) return ("max_tokens", $"the request sets no max_tokens, max_tokens is {mt}");
        if (MaxTokens is { } mt2 && f.MaxTokens > mt2) return ("max_tokens", $"max_tokens {f.MaxTokens} asked, max_tokens is {mt2}");
        if (Stream == false && f.Stream) return ("stream", "streamed responses are not allowed (stream: false)");
        if (Tools is { } allowed && f.ToolNames.FirstOrDefault(t => !allowed.Contains(t, StringComparer.Ordinal)) is { } tool)
            return ("tools", $"tool '{tool}' is not among the allowed tools");
        return null;
    }
}

/// <summary>One rule of a <see cref="ModelPolicy"/>.</summary>
/// <param name="Id">Unique id (letters, digits, '.', '_', '-'), named in decisions and the audit.</param>
/// <param name="Effect">Allow or deny.</param>
/// <param name="Match">Which requests it is about.</param>
/// <param name="Limits">Bounds on allowed requests (allow rules only).</param>
public sealed record ModelPolicyRule(string Id, ModelPolicyEffect Effect, ModelPolicyMatch Match, ModelPolicyLimits? Limits);

/// <summary>A policy's answer for one request.</summary>
/// <param name="Allowed">Whether the request is forwarded.</param>
/// <param name="Decision"><c>allow</c> or <c>deny</c> (the mediator's audit also has <c>error</c>: the policy could not decide).</param>
/// <param name="Reason">Why, in words (no prompt text).</param>
/// <param name="Rule">The rule id that decided, <c>default</c>, or the decider (<c>local-allow</c>, <c>policy-url</c>).</param>
/// <param name="Limit">The limit an allow rule's request exceeded, when that denied it.</param>
public sealed record ModelPolicyDecision(bool Allowed, string Decision, string Reason, string Rule, string? Limit = null)
{
    internal static ModelPolicyDecision Allow(string reason, string rule) => new(true, "allow", reason, rule);
    internal static ModelPolicyDecision Deny(string reason, string rule, string? limit = null) => new(false, "deny", reason, rule, limit);
    internal static ModelPolicyDecision Error(string reason, string rule) => new(false, "error", reason, rule);
}

/// <summary>
/// A model policy (schema <see cref="SchemaVersion"/>, docs/ARCHITECTURE.md "Model mediation"): rules tried in order, the first
/// whose match fits decides; none fits: <see cref="Default"/>. A matching allow rule whose limits the request exceeds denies it.
/// </summary>
public sealed class ModelPolicy
{
    /// <summary>The schema this build reads.</summary>
    public const string SchemaVersion = "microagent.model_policy.v1";

    /// <summary>Creates a policy from its parts (rule ids must be unique).</summary>
    public ModelPolicy(ModelPolicyEffect @default, IReadOnlyList<ModelPolicyRule> rules)
    {
        if (rules.GroupBy(r => r.Id).FirstOrDefault(g => g.Count() > 1) is { } dup)
            throw Errors.MicroagentException.Invalid($"model policy: rule id '{dup.Key}' is used twice");
        Default = @default;
        Rules = rules;
    }

    /// <summary>What a request no rule matches gets.</summary>
    public ModelPolicyEffect Default { get; }

    /// <summary>The rules, in order.</summary>
    public IReadOnlyList<ModelPolicyRule> Rules { get; }

    /// <summary>Reads a policy file (YAML or JSON); a bad file is <see cref="Errors.ErrorKind.Invalid"/> naming the line and field path.</summary>
    public static ModelPolicy Load(string path) => ModelPolicyFile.Load(path);

    /// <summary>Parses policy text; <paramref name="source"/> names it in errors.</summary>
    public static ModelPolicy Parse(string text, string source = "model policy") => ModelPolicyFile.Parse(text, source);

    /// <summary>Decides <paramref name="facts"/>.</summary>
    public ModelPolicyDecision Evaluate(ModelRequestFacts facts)
    {
        foreach (var rule in Rules)
        {
            if (!rule.Match.Matches(facts)) continue;
            if (rule.Effect == ModelPolicyEffect.Deny) return ModelPolicyDecision.Deny($"rule {rule.Id} denies", rule.Id);
            if (rule.Limits?.Exceeded(facts) is { } over) return ModelPolicyDecision.Deny($"rule {rule.Id}: {over.Reason}", rule.Id, over.Limit);
            return ModelPolicyDecision.Allow($"rule {rule.Id} allows", rule.Id);
        }
        return Default == ModelPolicyEffect.Allow
            ? ModelPolicyDecision.Allow("no rule matched; the default allows", "default")
            : ModelPolicyDecision.Deny("no rule matched; the default denies", "default");
    }
}
