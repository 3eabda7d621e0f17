using Microagent.Errors;

namespace Microagent.Models;

/// <summary>Makes the mediator for a workspace's <see cref="ModelMediationSettings"/>.</summary>
internal static class ModelMediators
{
    /// <summary>The mediator for <paramref name="settings"/> (not <see cref="ModelMediationMode.Off"/>), auditing to <paramref name="auditPath"/>.</summary>
    public static IModelMediator Create(ModelMediationSettings settings, string workspace, string auditPath, Action<string> log) =>
        throw new MicroagentException(ErrorKind.Unsupported, $"model mediation '{settings.Mode}' is not available in this build", "use --model-mediation off");
}
