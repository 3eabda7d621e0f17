using System.Text.Json.Nodes;
using Microagent.Vmm;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

/// <summary>Each way a guest or QEMU can end gets its own reason; only a guest shutdown is "powered itself off".</summary>
public sealed class GuestFaultsTests
{
    private static VmObservations Seen(params QmpEvent[] events)
    {
        var seen = new VmObservations();
        foreach (var e in events) seen.Observe(e);
        return seen;
    }

    private static QmpEvent Shutdown(string cause) => new(QmpEventNames.Shutdown, new JsonObject { ["guest"] = true, ["reason"] = cause });

    [Fact]
    public void A_guest_shutdown_is_the_only_power_off()
    {
        Assert.Equal((WorkspaceState.Stopped, "the guest powered itself off"), GuestFaults.Exit(Seen(Shutdown(ShutdownCauses.GuestShutdown)), 0, 7, []));
        var (state, detail) = GuestFaults.Exit(Seen(), 0, 7, ["no event at all"]);
        Assert.Equal(WorkspaceState.Failed, state);
        Assert.Contains("without reporting a cause", detail);
    }

    [Fact]
    public void A_panic_is_named_from_the_event_or_from_the_serial_log_alone()
    {
        string[] serial = ["x", "Kernel panic - not syncing: sysrq triggered crash", "CPU: 0", "a", "b", "c", "d", "e"];
        var (state, detail) = GuestFaults.Exit(Seen(new QmpEvent(QmpEventNames.GuestPanicked, null), Shutdown(ShutdownCauses.GuestPanic)), 0, 7, serial);
        Assert.Equal(WorkspaceState.Failed, state);
        Assert.Equal("guest kernel panic:\nKernel panic - not syncing: sysrq triggered crash\nCPU: 0\na\nb\nc\nd", detail);
        // No pvpanic driver: the kernel reboots (reboot=t is a triple fault) and only the serial log knows.
        Assert.StartsWith("guest kernel panic:", GuestFaults.Exit(Seen(Shutdown(ShutdownCauses.GuestReset)), 0, 7, serial).Detail);
        Assert.StartsWith("guest kernel panic (reported by the pvpanic device", GuestFaults.Exit(Seen(new QmpEvent(QmpEventNames.GuestPanicked, null)), 0, 7, []).Detail);
    }

    [Fact]
    public void The_agent_dying_as_pid_1_is_named()
    {
        string[] serial = ["Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009"];
        Assert.StartsWith("guest kernel panic: the guest agent (PID 1) died:", GuestFaults.Exit(Seen(), 0, 7, serial).Detail);
    }

    [Fact]
    public void A_reboot_attempt_a_triple_fault_and_a_qemu_crash_each_have_their_own_reason()
    {
        var reboot = GuestFaults.Exit(Seen(Shutdown(ShutdownCauses.GuestReset)), 0, 7, ["reboot: Restarting system"]);
        var triple = GuestFaults.Exit(Seen(Shutdown(ShutdownCauses.GuestReset)), 0, 7, ["nothing said"]);
        var crash = GuestFaults.Exit(Seen(), 139, 7, []);
        Assert.Contains("tried to reboot", reboot.Detail);
        Assert.Contains("triple fault", triple.Detail);
        Assert.Contains("crashed: killed by signal 11", crash.Detail);
        Assert.All(new[] { reboot, triple, crash }, r => Assert.Equal(WorkspaceState.Failed, r.State));
        Assert.All(new[] { reboot, triple, crash }, r => Assert.DoesNotContain("powered itself off", r.Detail));
    }

    [Fact]
    public void A_stopping_io_error_is_kept_until_resume_and_names_the_cause()
    {
        var error = new QmpEvent(QmpEventNames.BlockIoError, new JsonObject { ["operation"] = "write", ["action"] = "stop", ["nospace"] = true });
        var seen = Seen(error);
        Assert.Same(error, seen.StoppingIoError);
        Assert.StartsWith("host disk full: 1.5 MiB free on the filesystem of /w", GuestFaults.IoErrorDetail(error, 3 << 19, "/w"));
        var eio = new QmpEvent(QmpEventNames.BlockIoError, new JsonObject { ["operation"] = "read", ["action"] = "stop", ["reason"] = "Input/output error" });
        Assert.StartsWith("host I/O error on the workspace disk (read: Input/output error)", GuestFaults.IoErrorDetail(eio, null, "/w"));
        seen.Observe(new QmpEvent(QmpEventNames.Resume, null));
        Assert.Null(seen.StoppingIoError);
    }

    [Fact]
    public void Qmp_event_messages_parse_and_others_do_not()
    {
        var e = QmpEvent.FromMessage(JsonNode.Parse("""{"event":"BLOCK_IO_ERROR","data":{"action":"stop","nospace":true},"timestamp":{"seconds":1,"microseconds":2}}""")!.AsObject());
        Assert.NotNull(e);
        Assert.True(e.NoSpace);
        Assert.Equal("stop", e.Action);
        Assert.Null(QmpEvent.FromMessage(JsonNode.Parse("""{"return":{}}""")!.AsObject()));
    }

    [Fact]
    public void Free_space_of_a_real_directory_is_read()
    {
        Assert.True(HostSpace.FreeBytes(Path.GetTempPath()) > 0);
        Assert.Null(HostSpace.FreeBytes("/no/such/dir/for/microagent"));
    }
}
