using System.Diagnostics;
using Microagent.Vmm;

namespace Microagent.Tests.Vmm;

/// <summary>Against a real QEMU with no machine (-M none): starts in milliseconds, speaks real QMP.</summary>
public sealed class QmpClientTests
{
    [Fact]
    public async Task Negotiates_queries_and_quits_a_real_qemu()
    {
        var qemu = QemuInstallation.Locate();
        string dir = Directory.CreateTempSubdirectory("ma-qmp-").FullName;
        string sock = Path.Combine(dir, "qmp.sock");
        var psi = new ProcessStartInfo(qemu.SystemBinary) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in new[] { "-M", "none", "-nodefaults", "-no-user-config", "-display", "none", "-qmp", $"unix:{sock},server=on,wait=off" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        try
        {
            await Poll.UntilAsync(() => File.Exists(sock) || p.HasExited, TimeSpan.FromSeconds(30), "QEMU's QMP socket");
            await using var qmp = await QmpClient.ConnectAsync(sock);
            Assert.StartsWith("10.", qmp.QemuVersion);
            var status = await qmp.ExecuteAsync("query-status");
            Assert.NotNull(status?["status"]);
            await Assert.ThrowsAsync<Microagent.Errors.MicroagentException>(() => qmp.ExecuteAsync("no-such-command"));

            // Events arrive on the same connection as the commands, in order, while no command is waiting.
            await qmp.ExecuteAsync("stop");
            Assert.Equal(QmpEventNames.Stop, (await qmp.Events.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30))).Name);
            Assert.Equal(RunStates.Paused, (await qmp.ExecuteAsync("query-status"))?["status"]?.GetValue<string>());
            await qmp.ExecuteAsync("cont");
            Assert.Equal(QmpEventNames.Resume, (await qmp.Events.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30))).Name);

            await qmp.ExecuteAsync("quit");
            var shutdown = await qmp.Events.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal((QmpEventNames.Shutdown, ShutdownCauses.HostQmpQuit), (shutdown.Name, shutdown.Reason));
            Assert.True(p.WaitForExit(30_000));
            await qmp.Events.Completion.WaitAsync(TimeSpan.FromSeconds(30)); // the reader ends with the connection
        }
        finally
        {
            if (!p.HasExited) p.Kill();
            Directory.Delete(dir, true);
        }
    }
}
