using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microagent.Workspaces.Containment;

/// <summary>How far one phase of a quarantine got (docs/ARCHITECTURE.md "Quarantine"). Serialized in snake_case.</summary>
[JsonConverter(typeof(ContainmentPhaseStatusJsonConverter))]
public enum ContainmentPhaseStatus
{
    /// <summary>Not begun yet.</summary>
    Pending,
    /// <summary>Begun and not finished: the process doing it may still be at it, or died (then <see cref="Interrupted"/> once that is known).</summary>
    Running,
    /// <summary>Finished.</summary>
    Done,
    /// <summary>Not done, on purpose (<c>--no-capture</c>) or because there was nothing to do (no mediation channel, the VM already gone).</summary>
    Skipped,
    /// <summary>Tried and failed; the detail says why. A retry of <c>quarantine</c> tries it again.</summary>
    Failed,
    /// <summary>The supervisor died while it was running; a retry completes what is left.</summary>
    Interrupted,
}

/// <summary>snake_case JSON for <see cref="ContainmentPhaseStatus"/>.</summary>
internal sealed class ContainmentPhaseStatusJsonConverter()
    : JsonStringEnumConverter<ContainmentPhaseStatus>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false);

/// <summary>One phase of a quarantine: its name (<see cref="QuarantinePhases"/>), status, when it last changed and what happened.</summary>
/// <param name="Name">The phase (<see cref="QuarantinePhases"/>).</param>
/// <param name="Status">How far it got.</param>
/// <param name="At">When the status was recorded; null while pending.</param>
/// <param name="Detail">What was done or why not.</param>
public sealed record ContainmentPhase(string Name, ContainmentPhaseStatus Status, DateTimeOffset? At = null, string? Detail = null);

/// <summary>How a quarantine was ended: by <c>halt</c> (halted) or <c>kill</c>/<c>stop</c> (stopped).</summary>
/// <param name="At">When.</param>
/// <param name="By">The verb.</param>
/// <param name="State">The state it moved the workspace to.</param>
public sealed record ContainmentRelease(DateTimeOffset At, string By, WorkspaceState State);

/// <summary>
/// A workspace's containment record, <c>containment.json</c> (docs/ARCHITECTURE.md "Quarantine"): why it was quarantined and
/// every phase of the sequence with its status and time, in order. Written temp + rename under the state lock; an unreleased
/// record whose fence is done means the workspace is quarantined, whatever else happened (a crash half-way included).
/// </summary>
public sealed record ContainmentRecord
{
    /// <summary>Version of this record's layout.</summary>
    public int Version { get; init; } = 1;
    /// <summary>Why, as the caller said it.</summary>
    public string Reason { get; init; } = "";
    /// <summary>A forensic snapshot was asked for (not <c>--no-capture</c>).</summary>
    public bool Capture { get; init; }
    /// <summary>When the quarantine was asked for first.</summary>
    public DateTimeOffset RequestedAt { get; init; }
    /// <summary>When every phase was done or skipped; null while incomplete.</summary>
    public DateTimeOffset? CompletedAt { get; init; }
    /// <summary>The forensic snapshot's tag (<c>forensic-&lt;time&gt;</c>), once captured.</summary>
    public string? ForensicTag { get; init; }
    /// <summary>The phases in the order they run (<see cref="QuarantinePhases.Ordered"/>).</summary>
    public IReadOnlyList<ContainmentPhase> Phases { get; init; } = [];
    /// <summary>Set once halt, stop or kill moved the workspace on; the record stays as history.</summary>
    public ContainmentRelease? Released { get; init; }

    /// <summary>A new record: every phase pending (capture skipped when <paramref name="capture"/> is false).</summary>
    internal static ContainmentRecord Begin(string reason, bool capture, DateTimeOffset now) => new()
    {
        Reason = reason, Capture = capture, RequestedAt = now,
        Phases = [.. QuarantinePhases.Ordered.Select(p => p == QuarantinePhases.Capture && !capture
            ? new ContainmentPhase(p, ContainmentPhaseStatus.Skipped, now, "not asked for (--no-capture)")
            : new ContainmentPhase(p, ContainmentPhaseStatus.Pending))],
    };

    /// <summary>The phase named <paramref name="name"/>.</summary>
    public ContainmentPhase Phase(string name) => Phases.First(p => p.Name == name);

    /// <summary>The durable fence is in place: from here on the workspace is quarantined until released.</summary>
    [JsonIgnore] public bool Fenced => Released is null && Phases.Any(p => p.Name == QuarantinePhases.Fence && p.Status == ContainmentPhaseStatus.Done);

    /// <summary>Every phase is done or skipped.</summary>
    [JsonIgnore] public bool IsComplete => Phases.All(p => p.Status is ContainmentPhaseStatus.Done or ContainmentPhaseStatus.Skipped);

    /// <summary>Whether phase <paramref name="name"/> still has to run (pending, running, failed or interrupted).</summary>
    internal bool NeedsRun(string name) => Phase(name).Status is not (ContainmentPhaseStatus.Done or ContainmentPhaseStatus.Skipped);

    /// <summary>This record with phase <paramref name="name"/> at <paramref name="status"/>; completed when that was the last one.</summary>
    internal ContainmentRecord With(string name, ContainmentPhaseStatus status, string? detail, DateTimeOffset now)
    {
        var next = this with { Phases = [.. Phases.Select(p => p.Name == name ? new ContainmentPhase(name, status, now, detail) : p)] };
        return next.IsComplete && next.CompletedAt is null ? next with { CompletedAt = now } : next;
    }

    /// <summary>
    /// A retry with its own capture choice: <c>--no-capture</c> skips a capture not yet done, asking for one makes a skipped or
    /// failed one pending again. A completed record (the VM is gone) or a capture already taken stays as it is.
    /// </summary>
    internal ContainmentRecord WithCapture(bool capture, DateTimeOffset now)
    {
        if (CompletedAt is not null || Phase(QuarantinePhases.Capture).Status == ContainmentPhaseStatus.Done) return this;
        return (this with { Capture = capture }).With(QuarantinePhases.Capture,
            capture ? ContainmentPhaseStatus.Pending : ContainmentPhaseStatus.Skipped, capture ? null : "not asked for (--no-capture)", now);
    }

    /// <summary>The supervisor died: every phase that was running becomes interrupted (the rest stay as they were).</summary>
    internal ContainmentRecord Interrupt(string detail, DateTimeOffset now) =>
        this with
        {
            Phases = [.. Phases.Select(p => p.Status == ContainmentPhaseStatus.Running ? new ContainmentPhase(p.Name, ContainmentPhaseStatus.Interrupted, now, detail) : p)],
        };
}

/// <summary>The phases of a quarantine, in order (docs/ARCHITECTURE.md "Quarantine"). The one list every adapter reads.</summary>
public static class QuarantinePhases
{
    /// <summary>The durable marker: <c>containment.json</c> with this phase done, then the state <c>quarantined</c>.</summary>
    public const string Fence = "fence";
    /// <summary>The vCPUs frozen (QMP <c>stop</c>).</summary>
    public const string Freeze = "freeze";
    /// <summary>Egress connections aborted, DNS stopped, published listeners and their connections closed.</summary>
    public const string SeverNetwork = "sever-network";
    /// <summary>The mediation channel severed.</summary>
    public const string SeverMediation = "sever-mediation";
    /// <summary>The model forward closed (docs/ARCHITECTURE.md "Model runner"): its relays aborted, new guest connections refused.</summary>
    public const string SeverModel = "sever-model";
    /// <summary>The <c>--vsock</c> proxies severed.</summary>
    public const string SeverVsock = "sever-vsock";
    /// <summary>Console sessions closed and console input refused.</summary>
    public const string SeverConsole = "sever-console";
    /// <summary>The forensic snapshot (<c>forensic-&lt;time&gt;</c>, not restorable), taken while frozen.</summary>
    public const string Capture = "capture";
    /// <summary>The VM stopped (QEMU gone; the disk kept).</summary>
    public const string Stop = "stop";

    /// <summary>Every phase, in the order they run.</summary>
    public static IReadOnlyList<string> Ordered { get; } = [Fence, Freeze, SeverNetwork, SeverMediation, SeverModel, SeverVsock, SeverConsole, Capture, Stop];

    /// <summary>What each phase does, for a preview (<c>workspace_quarantine</c> with <c>preview</c>) and <c>--help</c>.</summary>
    public static string Describe(string phase) => phase switch
    {
        Fence => "write the durable fence (containment.json) and record the state quarantined",
        Freeze => "freeze the vCPUs in place (QMP stop); the guest runs no further instruction",
        SeverNetwork => "abort every egress connection, stop DNS, close the published ports and their connections",
        SeverMediation => "sever the mediation channel (readiness: severed by quarantine)",
        SeverModel => "close the model forward (guest 127.0.0.1:11434 to the model runner): abort its connections, refuse new ones",
        SeverVsock => "sever the --vsock proxies: close their connections, refuse new ones",
        SeverConsole => "close console sessions and refuse console input",
        Capture => "take a forensic snapshot while frozen (memory dump and disk layer, tag forensic-<time>, not restorable)",
        Stop => "stop the VM (QEMU exits; the disk is kept for the next start)",
        _ => phase,
    };
}

/// <summary>What <see cref="WorkspaceManager.QuarantineAsync"/> returns (and a preview: the phases it would run).</summary>
/// <param name="Name">The workspace.</param>
/// <param name="State">Its state afterwards (<c>quarantined</c> once fenced).</param>
/// <param name="Record">The containment record (for a preview: a record whose phases are all pending).</param>
/// <param name="Preview">Nothing was done: the record lists what would be.</param>
/// <param name="Actions">One line per phase to run: what it does.</param>
public sealed record QuarantineResult(string Name, WorkspaceState State, ContainmentRecord Record, bool Preview, IReadOnlyList<string> Actions);
