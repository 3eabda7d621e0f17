using System.Text.Json.Nodes;

namespace Microagent.Vmm;

// QMP asynchronous events the supervisor follows (QEMU docs/interop/qmp-spec.rst "Asynchronous events"; the event
// schemas are QEMU's qapi/run-state.json — STOP, RESUME, SHUTDOWN, RESET, GUEST_PANICKED, ShutdownCause — and
// qapi/block-core.json — BLOCK_IO_ERROR). An event message is {"event": NAME, "data": {...}, "timestamp": {...}}.

/// <summary>Event names (qapi/run-state.json, qapi/block-core.json).</summary>
internal static class QmpEventNames
{
    /// <summary>The VM stopped (no data; <c>query-status</c> says why: io-error, guest-panicked, paused, ...).</summary>
    public const string Stop = "STOP";
    /// <summary>The VM resumed.</summary>
    public const string Resume = "RESUME";
    /// <summary>The emulator is shutting down: data <c>guest</c> (bool) and <c>reason</c> (<see cref="ShutdownCauses"/>).</summary>
    public const string Shutdown = "SHUTDOWN";
    /// <summary>The VM was reset: data <c>guest</c>, <c>reason</c>.</summary>
    public const string Reset = "RESET";
    /// <summary>The guest panicked (pvpanic): data <c>action</c> (pause, poweroff, run) and optional <c>info</c>.</summary>
    public const string GuestPanicked = "GUEST_PANICKED";
    /// <summary>A disk I/O error: data <c>device</c>, <c>node-name</c>, <c>operation</c>, <c>action</c> (ignore, report, stop), <c>nospace</c>, <c>reason</c>.</summary>
    public const string BlockIoError = "BLOCK_IO_ERROR";
}

/// <summary><c>ShutdownCause</c> values (qapi/run-state.json) that the supervisor tells apart.</summary>
internal static class ShutdownCauses
{
    /// <summary>The guest powered itself off (ACPI or a power-off request).</summary>
    public const string GuestShutdown = "guest-shutdown";
    /// <summary>The guest reset the machine (a reboot request or a triple fault; with <c>-no-reboot</c> QEMU exits).</summary>
    public const string GuestReset = "guest-reset";
    /// <summary>The guest panicked and the panic action is shutdown.</summary>
    public const string GuestPanic = "guest-panic";
    /// <summary>QEMU received a signal (SIGTERM, SIGINT, SIGHUP).</summary>
    public const string HostSignal = "host-signal";
    /// <summary>The <c>quit</c> QMP command.</summary>
    public const string HostQmpQuit = "host-qmp-quit";
    /// <summary>An unrecoverable host error.</summary>
    public const string HostError = "host-error";
}

/// <summary><c>RunState</c> values (qapi/run-state.json) as <c>query-status</c> reports them.</summary>
internal static class RunStates
{
    /// <summary>Running.</summary>
    public const string Running = "running";
    /// <summary>Stopped on a disk error (werror/rerror=stop or enospc).</summary>
    public const string IoError = "io-error";
    /// <summary>Stopped after a guest panic (panic action pause).</summary>
    public const string GuestPanicked = "guest-panicked";
    /// <summary>Stopped by the <c>stop</c> command.</summary>
    public const string Paused = "paused";
    /// <summary>An internal emulation error (e.g. KVM internal error).</summary>
    public const string InternalError = "internal-error";
}

/// <summary>One QMP event: its name and data (null when it has none).</summary>
/// <param name="Name">Event name (<see cref="QmpEventNames"/>).</param>
/// <param name="Data">The event's <c>data</c> member.</param>
internal sealed record QmpEvent(string Name, JsonObject? Data)
{
    /// <summary>The event in a QMP message, or null when the message is not an event.</summary>
    public static QmpEvent? FromMessage(JsonObject message) =>
        message["event"] is JsonValue v && v.TryGetValue(out string? name) ? new QmpEvent(name, message["data"] as JsonObject) : null;

    /// <summary>A string member of <see cref="Data"/>, or null.</summary>
    public string? Text(string member) => Data?[member] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    /// <summary>A boolean member of <see cref="Data"/> (false when absent).</summary>
    public bool Flag(string member) => Data?[member] is JsonValue v && v.TryGetValue(out bool b) && b;

    /// <summary>SHUTDOWN and RESET: the cause (<see cref="ShutdownCauses"/>).</summary>
    public string? Reason => Text("reason");

    /// <summary>BLOCK_IO_ERROR: the host has no space left for the image (ENOSPC).</summary>
    public bool NoSpace => Flag("nospace");

    /// <summary>BLOCK_IO_ERROR: ignore, report or stop; GUEST_PANICKED: pause, poweroff or run.</summary>
    public string? Action => Text("action");
}
