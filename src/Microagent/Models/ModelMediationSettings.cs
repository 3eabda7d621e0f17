namespace Microagent.Models;

/// <summary>How requests from the guest reach the model runner (docs/ARCHITECTURE.md "Model mediation").</summary>
public enum ModelMediationMode
{
    /// <summary>The forward is relayed to the runner as raw bytes.</summary>
    Off,
    /// <summary>An HTTP mediator allows every request and audits it.</summary>
    LocalAllow,
    /// <summary>An HTTP mediator decides each request from a policy file or a policy URL, and audits it.</summary>
    Policy,
}

/// <summary>A workspace's model mediation (stored in its config; the <c>--model-mediation*</c> flags override it for one boot).</summary>
public sealed record ModelMediationSettings
{
    /// <summary>The mode.</summary>
    public ModelMediationMode Mode { get; init; } = ModelMediationMode.Off;
    /// <summary>With <see cref="ModelMediationMode.Policy"/>: a policy file (absolute host path).</summary>
    public string? PolicyFile { get; init; }
    /// <summary>With <see cref="ModelMediationMode.Policy"/>: a policy URL (the request's facts are POSTed to it).</summary>
    public string? PolicyUrl { get; init; }
    /// <summary>How long a policy URL has to answer before the request fails closed (503).</summary>
    public int PolicyTimeoutMs { get; init; } = 2000;
}
