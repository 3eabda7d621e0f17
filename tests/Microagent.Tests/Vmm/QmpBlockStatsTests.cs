using System.Diagnostics;
using System.Text.Json.Nodes;
using Microagent.Vmm;

namespace Microagent.Tests.Vmm;

/// <summary>QMP <c>query-blockstats</c> as QEMU 10.0 answers it for a workspace (root disk and one data disk), read into drive totals.</summary>
public sealed class QmpBlockStatsTests
{
    // Recorded from `{"execute":"query-blockstats"}` of a workspace VM, trimmed of the latency histograms and timed stats.
    private const string Reply = """
        [
          {"device": "root", "qdev": "/machine/peripheral-anon/device[0]/virtio-backend", "node-name": "#block152",
           "stats": {"rd_bytes": 18404352, "wr_bytes": 2252800, "rd_operations": 912, "wr_operations": 77, "flush_operations": 12,
                     "unmap_bytes": 0, "invalid_rd_operations": 0, "account_invalid": true, "account_failed": true, "timed_stats": []},
           "parent": {"node-name": "#block050", "stats": {"rd_bytes": 0, "wr_bytes": 2252800}}},
          {"device": "data0", "qdev": "/machine/peripheral-anon/device[1]/virtio-backend", "node-name": "#block311",
           "stats": {"rd_bytes": 4096, "wr_bytes": 104857600, "rd_operations": 1, "wr_operations": 800}},
          {"device": "", "node-name": "#block999", "stats": {"rd_bytes": 1, "wr_bytes": 1}}
        ]
        """;

    [Fact]
    public void Each_named_drive_has_its_byte_and_request_totals()
    {
        var drives = QmpBlockStats.Parse(JsonNode.Parse(Reply));
        Assert.Equal(
            [new QmpDriveStats("root", 18404352, 2252800, 912, 77), new QmpDriveStats("data0", 4096, 104857600, 1, 800)],
            drives);
    }

    [Fact]
    public void A_reply_that_is_not_a_list_reads_as_no_drives()
    {
        Assert.Empty(QmpBlockStats.Parse(null));
        Assert.Empty(QmpBlockStats.Parse(JsonNode.Parse("""{"device":"root"}""")));
        Assert.Equal(0, QmpBlockStats.Parse(JsonNode.Parse("""[{"device":"root","stats":{}}]"""))[0].WriteBytes);
    }

    [Fact]
    public async Task A_real_qemu_names_its_drives_by_their_ids()
    {
        var qemu = QemuInstallation.Locate();
        string dir = Directory.CreateTempSubdirectory("ma-qmp-").FullName;
        string sock = Path.Combine(dir, "qmp.sock");
        var psi = new ProcessStartInfo(qemu.SystemBinary) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in new[] { "-M", "none", "-nodefaults", "-no-user-config", "-display", "none",
                     "-drive", "driver=null-co,if=none,id=root,read-zeroes=on", "-drive", "driver=null-co,if=none,id=data0,read-zeroes=on",
                     "-qmp", $"unix:{sock},server=on,wait=off" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        try
        {
            await Poll.UntilAsync(() => File.Exists(sock) || p.HasExited, TimeSpan.FromSeconds(30), "QEMU's QMP socket");
            // QEMU binds the socket before it listens: a connect in between is refused, so connect until it is accepted.
            QmpClient? connected = null;
            var until = DateTime.UtcNow.AddSeconds(30);
            while (connected is null && !p.HasExited && DateTime.UtcNow < until)
            {
                try { connected = await QmpClient.ConnectAsync(sock); }
                catch (Microagent.Errors.MicroagentException) { await Task.Delay(50); }
            }
            Assert.True(connected is not null, $"QEMU's QMP socket did not accept a connection (exited: {p.HasExited})");
            await using var qmp = connected;
            var drives = QmpBlockStats.Parse(await qmp.ExecuteAsync(QmpBlockStats.Command));
            Assert.Equal(["root", "data0"], drives.Select(d => d.Device));
            Assert.All(drives, d => Assert.Equal((0L, 0L), (d.ReadBytes, d.WriteBytes)));
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
