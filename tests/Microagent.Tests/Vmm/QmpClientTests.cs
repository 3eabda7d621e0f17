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
            await qmp.ExecuteAsync("quit");
            Assert.True(p.WaitForExit(30_000));
        }
        finally
        {
            if (!p.HasExited) p.Kill();
            Directory.Delete(dir, true);
        }
    }
}
