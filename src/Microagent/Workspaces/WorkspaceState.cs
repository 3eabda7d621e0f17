using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microagent.Workspaces;

/// <summary>Lifecycle states of a named workspace (docs/ARCHITECTURE.md "Workspace lifecycle"). Serialized in snake_case.</summary>
[JsonConverter(typeof(WorkspaceStateJsonConverter))]
public enum WorkspaceState
{
    /// <summary>Created (config and disk overlay exist); never booted.</summary>
    Prepared,
    /// <summary>The supervisor is booting the VM (and running setup on first boot).</summary>
    Starting,
    /// <summary>The guest agent serves exec.</summary>
    Running,
    /// <summary>vCPUs frozen: by <c>pause</c> or by the host (disk full); <c>pauseCause</c> says which.</summary>
    Paused,
    /// <summary>A graceful power-off is in progress.</summary>
    Stopping,
    /// <summary>Powered off gracefully; the disk is kept.</summary>
    Halted,
    /// <summary>Not running for another reason (killed, workload finished, idle lease expired); the disk is kept.</summary>
    Stopped,
    /// <summary>Boot, setup or the VM failed, or the supervisor died; the disk is kept; see the detail.</summary>
    Failed,
    /// <summary>
    /// Fenced by <c>quarantine</c> (docs/ARCHITECTURE.md "Quarantine"): network, mediation, vsock proxies and console severed, the
    /// vCPUs frozen, then the VM stopped; the containment record says how far it got. Only halt, stop or kill move it on.
    /// </summary>
    Quarantined,
}

/// <summary>snake_case JSON for <see cref="WorkspaceState"/>.</summary>
internal sealed class WorkspaceStateJsonConverter() : JsonStringEnumConverter<WorkspaceState>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false);

/// <summary>
/// The workspace state machine (docs/ARCHITECTURE.md "Workspace lifecycle"): every transition is checked here and every fallback
/// is decided here, nowhere else. Invariant: a state written to <c>state.json</c> was reached through <see cref="CanTransition"/>
/// (directly, or as the result of <see cref="Settle"/>, which only returns legal targets).
/// </summary>
public static class WorkspaceStateMachine
{
    private static readonly Dictionary<WorkspaceState, WorkspaceState[]> Allowed = new()
    {
        [WorkspaceState.Prepared] = [WorkspaceState.Starting],
        [WorkspaceState.Starting] = [WorkspaceState.Running, WorkspaceState.Failed, WorkspaceState.Stopped, WorkspaceState.Stopping],
        [WorkspaceState.Running] = [WorkspaceState.Stopping, WorkspaceState.Stopped, WorkspaceState.Failed, WorkspaceState.Paused, WorkspaceState.Quarantined],
        [WorkspaceState.Paused] = [WorkspaceState.Running, WorkspaceState.Stopping, WorkspaceState.Stopped, WorkspaceState.Failed, WorkspaceState.Quarantined],
        [WorkspaceState.Stopping] = [WorkspaceState.Halted, WorkspaceState.Stopped, WorkspaceState.Failed],
        [WorkspaceState.Halted] = [WorkspaceState.Starting],
        [WorkspaceState.Stopped] = [WorkspaceState.Starting],
        [WorkspaceState.Failed] = [WorkspaceState.Starting],
        // Only halt (halted), stop or kill (stopped) release a quarantine: nothing fails it or boots it (docs/ARCHITECTURE.md "Quarantine").
        [WorkspaceState.Quarantined] = [WorkspaceState.Halted, WorkspaceState.Stopped],
    };

    /// <summary>Whether <paramref name="from"/> → <paramref name="to"/> is a legal transition.</summary>
    internal static bool CanTransition(WorkspaceState from, WorkspaceState to) => Allowed[from].Contains(to);

    /// <summary>
    /// The state to record when a writer wants <paramref name="wanted"/> but the workspace is in <paramref name="from"/>
    /// (a halt, kill, failure or reconcile that must end somewhere legal). Rules, first match wins:
    /// <list type="number">
    /// <item>Already there: <paramref name="from"/> (nothing to record).</item>
    /// <item>A legal transition: <paramref name="wanted"/>.</item>
    /// <item>starting → halted: <c>stopped</c>. A guest that never reached running was not powered off gracefully.</item>
    /// <item>quarantined wanting anything it cannot reach (failed: the VM died, the supervisor crashed): <c>quarantined</c>.
    /// The fence holds until halt, stop or kill release it.</item>
    /// <item>An active state (a VM or supervisor should exist) wanting an end state it cannot reach (e.g. running → halted
    /// without stopping): <c>failed</c>, which every active state can reach; the detail says what happened.</item>
    /// <item>Anything else stays <paramref name="from"/>: an end state already recorded (halted, stopped, failed, prepared) is
    /// not overwritten by a late writer, and an active state is not moved to another active state it cannot reach.</item>
    /// </list>
    /// Invariant: the result is <paramref name="from"/> or a legal target of it.
    /// </summary>
    internal static WorkspaceState Settle(WorkspaceState from, WorkspaceState wanted)
    {
        if (from == wanted || CanTransition(from, wanted)) return wanted;
        if (from == WorkspaceState.Starting && wanted == WorkspaceState.Halted) return WorkspaceState.Stopped;
        if (from == WorkspaceState.Quarantined) return from;
        if (from.IsActive() && wanted is WorkspaceState.Halted or WorkspaceState.Stopped or WorkspaceState.Failed) return WorkspaceState.Failed;
        return from;
    }

    /// <summary>Throws <see cref="WorkspaceStateException"/> unless <paramref name="from"/> → <paramref name="to"/> is legal.</summary>
    internal static void EnsureTransition(string name, WorkspaceState from, WorkspaceState to)
    {
        if (!CanTransition(from, to))
            throw new WorkspaceStateException(name, from, $"workspace '{name}' cannot go from {from.WireName()} to {to.WireName()}", null);
    }

    /// <summary>
    /// Throws unless a workspace in <paramref name="state"/> may be started: starting/running/stopping/paused are a
    /// <c>conflict</c>; quarantined needs halt, stop or kill first.
    /// </summary>
    internal static void EnsureCanStart(string name, WorkspaceState state)
    {
        switch (state)
        {
            case WorkspaceState.Quarantined:
                throw new WorkspaceStateException(name, state, $"workspace '{name}' is quarantined: its network, mediation and console were severed",
                    $"inspect it (`microagent status {name}`, its forensic snapshot), then `microagent halt {name}`, `microagent stop {name}` or " +
                    $"`microagent kill {name}` first; the next start boots from the preserved disk");
            case WorkspaceState.Starting or WorkspaceState.Running or WorkspaceState.Stopping or WorkspaceState.Paused:
                throw new WorkspaceStateException(name, state, $"workspace '{name}' is already {state.WireName()}",
                    state switch
                    {
                        WorkspaceState.Stopping => $"wait for it: `microagent wait {name}`",
                        WorkspaceState.Paused => $"thaw it with `microagent resume {name}` (start boots a stopped workspace), or halt it first",
                        _ => $"use it (`microagent exec {name} -- CMD`) or halt it first",
                    });
        }
        EnsureTransition(name, state, WorkspaceState.Starting);
    }

    /// <summary>A VM and its supervisor exist (or should) in this state.</summary>
    public static bool IsActive(this WorkspaceState state) =>
        state is WorkspaceState.Starting or WorkspaceState.Running or WorkspaceState.Paused or WorkspaceState.Stopping or WorkspaceState.Quarantined;

    /// <summary>Nothing will change without a new command: halted, stopped, failed (and prepared: never started).</summary>
    public static bool IsTerminal(this WorkspaceState state) =>
        state is WorkspaceState.Halted or WorkspaceState.Stopped or WorkspaceState.Failed or WorkspaceState.Prepared;

    /// <summary>snake_case name, as in JSON.</summary>
    public static string WireName(this WorkspaceState state) => JsonNamingPolicy.SnakeCaseLower.ConvertName(state.ToString());
}
