using Microagent.Diagnostics;
using Microagent.Errors;
using Microagent.Tests.Workspaces.Manager;

namespace Microagent.Tests.Diagnostics;

public sealed class HostPrerequisitesTests
{
    [Fact]
    public void Failure_names_each_failed_check_and_joins_their_distinct_remediations()
    {
        var e = HostPrerequisites.Failure([
            new DoctorCheck("qemu", CheckStatus.Fail, "qemu-system-x86_64 is not installed", Doctor.Install),
            new DoctorCheck("e2fsprogs", CheckStatus.Fail, "mke2fs not found", Doctor.Install),
        ]);

        Assert.Equal(ErrorKind.Unsupported, e.Kind);
        Assert.Equal("this host lacks what microagent needs: qemu: qemu-system-x86_64 is not installed; e2fsprogs: mke2fs not found", e.Message);
        Assert.Equal(Doctor.Install + " (`microagent doctor`, or Doctor.RunAsync, lists every check)", e.Remediation);
    }

    [Fact]
    public async Task The_prerequisite_checks_cover_what_the_host_must_provide()
    {
        using var state = new TempState();
        var report = await new Doctor(state.Paths).CheckPrerequisitesAsync();
        Assert.Equal(["qemu", "e2fsprogs", "kmod", "kernel"], report.Checks.Select(c => c.Name).Where(n => n != "qboot"));
        Assert.Null(report.Accelerator);
    }
}
