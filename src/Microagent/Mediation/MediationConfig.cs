using System.Globalization;
using System.Net.Sockets;
using Microagent.Protocol;
using Microagent.Workspaces;

namespace Microagent.Mediation;

/// <summary>
/// The mediation channel of a workspace (spec key <c>mediation:</c>, CLI <c>--mediation PORT=HOST:PORT</c>): guest connections
/// to CID 2 port <see cref="Port"/> are relayed, one TCP connection each, to the host control plane at <see cref="Target"/>.
/// </summary>
public sealed record MediationConfig
{
    /// <summary>The default guest port (vsock, on CID 2).</summary>
    public const uint DefaultPort = 2048;

    /// <summary>The channel is set up (false = declared but off).</summary>
    public bool Enabled { get; init; } = true;
    /// <summary>The workspace needs the channel: an unreachable target is an error in status (the CLI form is required).</summary>
    public bool Required { get; init; } = true;
    /// <summary>vsock port the agent connects to on CID 2.</summary>
    public uint Port { get; init; } = DefaultPort;
    /// <summary>TCP target on the host, <c>HOST:PORT</c>.</summary>
    public required string Target { get; init; }
    /// <summary>
    /// True (default): a guest connection whose target cannot be reached is closed at once (the guest sees a reset),
    /// never held or degraded. False (development): the guest's connection waits up to <see cref="FailOpenWait"/> for the target to come up.
    /// </summary>
    public bool FailClosed { get; init; } = true;

    /// <summary>How long a fail-open guest connection waits for the target.</summary>
    public static readonly TimeSpan FailOpenWait = TimeSpan.FromSeconds(30);

    /// <summary>The relay mapping (port → target).</summary>
    public VsockMapping ToMapping()
    {
        var (host, port) = SplitTarget(Target);
        return new VsockMapping(Port, host, port);
    }

    /// <summary>Parses the CLI form <c>PORT=HOST:PORT</c> (required and fail-closed unless <paramref name="optional"/>).</summary>
    public static MediationConfig Parse(string text, bool optional = false)
    {
        string s = text.Trim();
        int eq = s.IndexOf('=');
        if (eq <= 0 || !uint.TryParse(s.AsSpan(0, eq), NumberStyles.None, CultureInfo.InvariantCulture, out uint port))
            throw new WorkspaceSpecException($"--mediation '{text}' is not PORT=HOST:PORT", "example: --mediation 2048=127.0.0.1:9900 (the agent connects to CID 2 port 2048)");
        return Create(port, s[(eq + 1)..], required: !optional, failClosed: !optional, enabled: true);
    }

    /// <summary>Builds and validates a config.</summary>
    public static MediationConfig Create(uint port, string target, bool required, bool failClosed, bool enabled)
    {
        if (port is 0 or ProtocolInfo.ReadyPort or ProtocolInfo.AgentPort or NetworkInfo.EgressPort or NetworkInfo.DnsPort)
            throw new WorkspaceSpecException($"mediation port {port} is not usable", $"use another port (default {DefaultPort}); 0, {ProtocolInfo.AgentPort}, {ProtocolInfo.ReadyPort}, {NetworkInfo.EgressPort} and {NetworkInfo.DnsPort} are reserved");
        var (host, hostPort) = SplitTarget(target);
        return new MediationConfig { Enabled = enabled, Required = required, Port = port, Target = $"{host}:{hostPort}", FailClosed = failClosed };
    }

    private static (string Host, int Port) SplitTarget(string target)
    {
        string t = target.Trim();
        int colon = t.LastIndexOf(':');
        string host = colon < 0 ? "" : t[..colon].Trim('[', ']');
        if (host.Length == 0 || !int.TryParse(t.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
            throw new WorkspaceSpecException($"mediation target '{target}' is not HOST:PORT", "example: target: 127.0.0.1:9900");
        return (host, port);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Port}={Target}{(Required ? "" : " (optional)")}";
}

/// <summary>What <c>status</c> reports about the mediation channel (<c>mediationReady</c>).</summary>
/// <param name="Ready">The target accepted a bounded connect-and-close probe and the channel is not severed.</param>
/// <param name="Detail">Port, target and what was observed.</param>
/// <param name="Error">Set when a required channel is not ready (<c>required mediation target is unreachable</c>) or was severed.</param>
/// <param name="Port">Guest vsock port.</param>
/// <param name="Target">Host TCP target.</param>
/// <param name="Required">Declared required.</param>
/// <param name="FailClosed">Declared fail-closed.</param>
/// <param name="Severed">The supervisor severed the channel (quarantine hook): no byte crosses until the next start.</param>
/// <param name="ActiveConnections">Guest connections being relayed now.</param>
/// <param name="TotalConnections">Guest connections accepted on this boot.</param>
public sealed record MediationReadiness(bool Ready, string Detail, string? Error, uint Port, string Target, bool Required, bool FailClosed,
    bool Severed = false, int ActiveConnections = 0, long TotalConnections = 0)
{
    /// <summary>The error text for a required target that does not answer.</summary>
    public const string UnreachableError = "required mediation target is unreachable";
    /// <summary>The error text after <see cref="WorkspaceManager.SeverMediationAsync"/>.</summary>
    public const string SeveredError = "the mediation channel was severed by the supervisor";

    /// <summary>The error text while the workspace is quarantined (docs/ARCHITECTURE.md "Quarantine").</summary>
    public const string QuarantinedError = "severed by quarantine";

    /// <summary>Readiness of a quarantined workspace: not ready, severed by quarantine (<see cref="Signals.Quarantined"/>).</summary>
    public static MediationReadiness SeveredByQuarantine(MediationConfig c) =>
        new(false, $"mediation port {c.Port} -> {c.Target}: {QuarantinedError}; guest connections are refused", QuarantinedError,
            c.Port, c.Target, c.Required, c.FailClosed, Severed: true);

    /// <summary>Readiness of a workspace that is not running (nothing is probed).</summary>
    public static MediationReadiness NotRunning(MediationConfig c, string state) =>
        new(false, $"mediation port {c.Port} -> {c.Target}: the workspace is {state}", null, c.Port, c.Target, c.Required, c.FailClosed);
}

/// <summary>The readiness probe: a bounded TCP connect-and-close to the target (listeners must tolerate such probes).</summary>
public static class MediationProbe
{
    /// <summary>Default probe bound.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Null when <paramref name="host"/>:<paramref name="port"/> accepted a connection within <paramref name="timeout"/>; else why not.</summary>
    public static async Task<string?> ProbeAsync(string host, int port, TimeSpan timeout, CancellationToken ct = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        using var s = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await s.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            s.Shutdown(SocketShutdown.Both);
            return null;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return $"no answer within {timeout.TotalMilliseconds:0} ms"; }
        catch (SocketException e) { return e.SocketErrorCode.ToString() switch { "ConnectionRefused" => "connection refused", _ => e.Message }; }
    }

    /// <summary>Probes <paramref name="config"/>'s target and builds the status entry.</summary>
    public static async Task<MediationReadiness> ReadinessAsync(MediationConfig config, bool severed, int active, long total, CancellationToken ct = default)
    {
        string head = $"mediation port {config.Port} -> {config.Target}";
        if (severed)
            return new(false, $"{head}: severed by the supervisor; guest connections are refused", MediationReadiness.SeveredError,
                config.Port, config.Target, config.Required, config.FailClosed, true, active, total);
        var m = config.ToMapping();
        string? why = await ProbeAsync(m.Host, m.HostPort, DefaultTimeout, ct).ConfigureAwait(false);
        if (why is null)
            return new(true, $"{head}: target accepts connections", null, config.Port, config.Target, config.Required, config.FailClosed, false, active, total);
        string mode = (config.Required ? "required" : "optional") + (config.FailClosed
            ? ", fail-closed: guest connections are refused until it answers"
            : $", fail-open: a guest connection waits up to {MediationConfig.FailOpenWait.TotalSeconds:0} s for it");
        return new(false, $"{head}: target unreachable ({why}); {mode}", config.Required ? MediationReadiness.UnreachableError : null,
            config.Port, config.Target, config.Required, config.FailClosed, false, active, total);
    }
}
