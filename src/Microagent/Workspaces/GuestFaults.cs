using Microagent.Tools;
using Microagent.Vmm;

namespace Microagent.Workspaces;

/// <summary>What the supervisor has seen of QEMU's QMP events during one boot (docs/ARCHITECTURE.md "Faults").</summary>
internal sealed class VmObservations
{
    /// <summary>The cause of the last SHUTDOWN event (<see cref="ShutdownCauses"/>); null when none arrived.</summary>
    public string? ShutdownCause { get; set; }

    /// <summary>A GUEST_PANICKED event arrived.</summary>
    public bool Panicked { get; set; }

    /// <summary>The last BLOCK_IO_ERROR whose action stops the VM; cleared on RESUME.</summary>
    public QmpEvent? StoppingIoError { get; set; }

    /// <summary>Folds one event in.</summary>
    public void Observe(QmpEvent e)
    {
        switch (e.Name)
        {
            case QmpEventNames.Shutdown: ShutdownCause = e.Reason; break;
            case QmpEventNames.GuestPanicked: Panicked = true; break;
            case QmpEventNames.BlockIoError when e.Action == "stop": StoppingIoError = e; break;
            case QmpEventNames.Resume: StoppingIoError = null; break;
        }
    }
}

/// <summary>
/// Turns what the supervisor observed (QMP events, QEMU's exit status, the serial log) into the truthful end state and reason
/// (docs/ARCHITECTURE.md "Faults"). Pure: unit-tested without a VM. Invariant: "the guest powered itself off" is said only
/// when QEMU reported a guest shutdown.
/// </summary>
internal static class GuestFaults
{
    /// <summary>How many lines of a panic are quoted in the reason.</summary>
    public const int PanicLines = 6;

    /// <summary>The kernel's panic banner (kernel/panic.c).</summary>
    public const string PanicBanner = "Kernel panic - not syncing";

    /// <summary>What the kernel prints before a reboot (kernel/reboot.c, kernel_restart).</summary>
    public const string RestartBanner = "reboot: Restarting system";

    /// <summary>Reason recorded for a guest kernel panic.</summary>
    public const string PanicReason = "guest kernel panic";

    /// <summary>Reason recorded when the host disk holding the workspace is full.</summary>
    public const string DiskFullReason = "host disk full";

    /// <summary>The state and reason for a QEMU that exited with <paramref name="exitCode"/> while the workspace was up.</summary>
    public static (WorkspaceState State, string Detail) Exit(VmObservations seen, int exitCode, int qemuPid, IReadOnlyList<string> serial)
    {
        var panic = PanicExcerpt(serial);
        if (seen.Panicked || seen.ShutdownCause == ShutdownCauses.GuestPanic || panic.Count > 0)
            return (WorkspaceState.Failed, Panic(panic));
        if (exitCode > 128)
            return (WorkspaceState.Failed, $"QEMU (pid {qemuPid}) crashed: killed by signal {exitCode - 128}. Serial log tail:\n{Tail(serial)}");
        switch (seen.ShutdownCause)
        {
            case ShutdownCauses.GuestShutdown:
                return exitCode == 0 ? (WorkspaceState.Stopped, "the guest powered itself off")
                    : (WorkspaceState.Failed, $"the guest powered off, but QEMU (pid {qemuPid}) exited with status {exitCode}");
            case ShutdownCauses.GuestReset:
                return serial.Any(l => l.Contains(RestartBanner, StringComparison.Ordinal))
                    ? (WorkspaceState.Failed, "the guest tried to reboot; workspaces do not reboot (start it again)")
                    : (WorkspaceState.Failed, $"the guest CPU reset itself (triple fault). Serial log tail:\n{Tail(serial)}");
            case ShutdownCauses.HostSignal:
                return (WorkspaceState.Failed, $"QEMU (pid {qemuPid}) was terminated by a signal from the host");
            case ShutdownCauses.HostQmpQuit:
                return (WorkspaceState.Failed, $"QEMU (pid {qemuPid}) was told to quit over QMP by another client");
            case { } other:
                return (WorkspaceState.Failed, $"QEMU (pid {qemuPid}) shut down ({other}, status {exitCode})");
        }
        return (WorkspaceState.Failed, exitCode == 0
            ? $"QEMU (pid {qemuPid}) exited without reporting a cause. Serial log tail:\n{Tail(serial)}"
            : $"QEMU (pid {qemuPid}) exited unexpectedly (status {exitCode}). Serial log tail:\n{Tail(serial)}");
    }

    /// <summary>The reason for a panic: "guest kernel panic" and the first lines of it (or a note that the log has none).</summary>
    public static string Panic(IReadOnlyList<string> excerpt)
    {
        if (excerpt.Count == 0) return $"{PanicReason} (reported by the pvpanic device; the serial log holds no panic message)";
        string head = excerpt[0].Contains("Attempted to kill init", StringComparison.Ordinal)
            ? $"{PanicReason}: the guest agent (PID 1) died"
            : PanicReason;
        return $"{head}:\n{string.Join('\n', excerpt)}";
    }

    /// <summary>From the first line with the panic banner, up to <see cref="PanicLines"/> lines; empty when there is none.</summary>
    public static IReadOnlyList<string> PanicExcerpt(IReadOnlyList<string> serial)
    {
        int start = -1;
        for (int i = 0; i < serial.Count; i++)
            if (serial[i].Contains(PanicBanner, StringComparison.Ordinal)) { start = i; break; }
        if (start < 0) return [];
        return [.. serial.Skip(start).Take(PanicLines).Select(l => l.TrimEnd('\r'))];
    }

    /// <summary>The pause reason for a disk error that stopped the VM.</summary>
    public static string IoErrorDetail(QmpEvent? error, long? freeBytes, string directory)
    {
        string free = freeBytes is { } f ? $"{ByteSize.Format(f)} free" : "free space unknown";
        if (error is null || error.NoSpace)
            return $"{DiskFullReason}: {free} on the filesystem of {directory}; the guest is frozen, nothing it wrote is lost";
        return $"host I/O error on the workspace disk ({error.Text("operation") ?? "io"}: {error.Text("reason") ?? "unknown"}); {free} on the filesystem of {directory}";
    }

    private static string Tail(IReadOnlyList<string> serial) =>
        serial.Count == 0 ? "(no serial output)" : string.Join('\n', serial.TakeLast(5));
}
