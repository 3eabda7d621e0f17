using Microagent.Access;
using Microagent.Errors;
using Microagent.Mediation;
using Microagent.Workspaces;

namespace Microagent.Mcp;

/// <summary>
/// The arguments that reach outside the state directory, each checked against <see cref="Limits"/> and noted on the
/// call for the audit trail before it is used: image references that read host paths, vsock mappings and mediation targets.
/// </summary>
public sealed partial class ToolCatalog
{
    /// <summary>The image argument; an <c>oci:</c>/<c>docker-archive:</c> one must resolve inside a host root.</summary>
    private string? Image(ToolCall call, string argument = "image")
    {
        string? image = call.String(argument);
        if (HostAccess.ImageSourcePath(image) is { } path)
        {
            call.HostPaths.Add(path);
            Limits.Host.CheckImageSource(image, argument);
        }
        return image;
    }

    /// <summary>The vsock mappings; each host target must be allowed.</summary>
    private List<VsockMapping> Vsock(ToolCall call)
    {
        var mappings = call.Strings("vsock").Select(VsockMapping.Parse).ToList();
        foreach (var m in mappings) CheckTarget(call, m.Host, m.HostPort, "vsock");
        return mappings;
    }

    /// <summary>The mediation channel, whose control-plane target must be allowed.</summary>
    private MediationConfig? Mediation(ToolCall call)
    {
        string? spec = call.String("mediation");
        if (spec is null)
            return call.Boolean("mediation_optional") ? throw MicroagentException.Invalid("'mediation_optional' needs 'mediation'") : null;
        var config = MediationConfig.Parse(spec, optional: call.Boolean("mediation_optional"));
        int colon = config.Target.LastIndexOf(':');
        CheckTarget(call, config.Target[..colon].Trim('[', ']'), int.Parse(config.Target[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture),
            "mediation");
        return config;
    }

    private void CheckTarget(ToolCall call, string host, int port, string argument)
    {
        call.HostTargets.Add($"{(host.Contains(':') ? $"[{host}]" : host)}:{port}");
        Limits.Targets.Check(host, port, argument);
    }
}
