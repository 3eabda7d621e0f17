using Microagent.Errors;
using Microagent.Models.Mediation;

namespace Microagent.Models;

/// <summary>Makes the mediator for a workspace's <see cref="ModelMediationSettings"/> (docs/ARCHITECTURE.md "Model mediation").</summary>
internal static class ModelMediators
{
    /// <summary>Longest policy URL timeout accepted.</summary>
    public const int MaxPolicyTimeoutMs = 60_000;

    /// <summary>
    /// The mediator for <paramref name="settings"/> (not <see cref="ModelMediationMode.Off"/>), auditing to <paramref name="auditPath"/>
    /// (0600). The policy file is read now (a bad one fails the boot, naming the field and line) and re-read when it changes; a
    /// change that does not parse makes every request fail closed (503) until it is fixed.
    /// </summary>
    public static IModelMediator Create(ModelMediationSettings settings, string workspace, string auditPath, Action<string> log) =>
        Create(settings, workspace, auditPath, log, null);

    /// <summary><see cref="Create(ModelMediationSettings, string, string, Action{string})"/> with other request bounds (tests).</summary>
    internal static HttpModelMediator Create(ModelMediationSettings settings, string workspace, string auditPath, Action<string> log, HttpLimits? limits)
    {
        Validate(settings);
        IModelDecider decider = settings.Mode switch
        {
            ModelMediationMode.LocalAllow => new LocalAllowDecider(),
            _ => new PolicyDecider(
                settings.PolicyFile is { } file ? new PolicyFileSource(file, log) : null,
                settings.PolicyUrl is { } url ? new PolicyUrlClient(new Uri(url), TimeSpan.FromMilliseconds(settings.PolicyTimeoutMs)) : null),
        };
        return new HttpModelMediator(workspace, decider, new ModelAudit(auditPath, log), log, limits);
    }

    /// <summary>
    /// Checks <paramref name="settings"/> without making anything: <c>policy</c> needs a policy file or URL (both: the file decides
    /// first, then the URL), the file must parse, the URL must be absolute http or https, the timeout 1 ms to 60 s; a file or
    /// URL with another mode is refused. Errors are <see cref="ErrorKind.Invalid"/> with the field at fault.
    /// </summary>
    public static void Validate(ModelMediationSettings settings)
    {
        if (settings.Mode != ModelMediationMode.Policy)
        {
            if (settings.PolicyFile is not null || settings.PolicyUrl is not null)
                throw Invalid("a model policy file or URL is only used with model mediation 'policy'", "model_mediation");
            if (settings.Mode == ModelMediationMode.Off) throw Invalid("model mediation 'off' has no mediator (the forward is relayed directly)", "model_mediation");
            return;
        }
        if (settings.PolicyFile is null && settings.PolicyUrl is null)
            throw Invalid("model mediation 'policy' needs a policy file or a policy URL", "model_policy_file");
        if (settings.PolicyFile is { } file)
        {
            if (!Path.IsPathFullyQualified(file)) throw Invalid($"the model policy file '{file}' must be an absolute path", "model_policy_file");
            ModelPolicy.Load(file);
        }
        if (settings.PolicyUrl is { } url
            && (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(uri.UserInfo)))
            throw Invalid($"the model policy URL '{url}' is not an absolute http:// or https:// URL (without credentials)", "model_policy_url");
        if (settings.PolicyTimeoutMs is < 1 or > MaxPolicyTimeoutMs)
            throw Invalid($"the model policy timeout must be 1 ms to {MaxPolicyTimeoutMs / 1000} s", "model_policy_timeout");
    }

    private static MicroagentException Invalid(string message, string field) =>
        new(ErrorKind.Invalid, message, "see README.md \"Model mediation\"") { Field = field };
}
