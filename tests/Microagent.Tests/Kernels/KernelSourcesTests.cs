using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Errors;
using Microagent.Kernels;
using Microagent.Tests.Images;
using Microagent.Tools;

namespace Microagent.Tests.Kernels;

/// <summary><see cref="KernelSources"/>: installs from a path or a loopback URL, each checked against its sha256 first; kernel check.</summary>
public sealed class KernelSourcesTests : IDisposable
{
    private const string Version = "9.9.8-sources";
    private readonly TempDir _tmp = new();
    private readonly StatePaths _paths;

    public KernelSourcesTests() => _paths = new StatePaths(Path.Combine(_tmp.Path, "state"));

    public void Dispose() => _tmp.Dispose();

    /// <summary>A file with a bzImage setup header naming <see cref="Version"/>.</summary>
    private string FakeBzImage()
    {
        byte[] img = new byte[0x1000];
        Encoding.ASCII.GetBytes("HdrS").CopyTo(img, 0x202);
        img[0x20E] = 0x00; img[0x20F] = 0x01;
        Encoding.ASCII.GetBytes($"{Version} (test@example) #1 SMP\0").CopyTo(img, 0x300);
        Random.Shared.NextBytes(img.AsSpan(0x800));
        string path = Path.Combine(_tmp.Path, "vmlinuz");
        File.WriteAllBytes(path, img);
        return path;
    }

    [Fact]
    public async Task A_file_is_checked_against_its_sha256()
    {
        string f = FakeBzImage();
        string sha = await Hashing.Sha256FileAsync(f);
        var ok = await KernelSources.VerifyFileAsync(f, "SHA256:" + sha.ToUpperInvariant());
        Assert.Equal((sha, 0x1000L), (ok.Sha256, ok.Bytes));
        var wrong = await Assert.ThrowsAsync<MicroagentException>(() => KernelSources.VerifyFileAsync(f, new string('0', 64)));
        Assert.Equal(ErrorKind.Permanent, wrong.Kind);
        Assert.Contains(sha, wrong.Message);
        var malformed = await Assert.ThrowsAsync<MicroagentException>(() => KernelSources.VerifyFileAsync(f, "abc"));
        Assert.Equal((ErrorKind.Invalid, "sha256"), (malformed.Kind, malformed.Field));
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<MicroagentException>(() => KernelSources.VerifyFileAsync(f + ".none", sha))).Kind);
    }

    [Fact]
    public async Task Install_from_a_path_verifies_first_and_check_reports_the_kernel()
    {
        var sources = new KernelSources(_paths);
        var none = await sources.CheckAsync();
        Assert.False(none.Ok);
        Assert.Contains("no kernel", none.Problem);

        string f = FakeBzImage();
        var refused = await Assert.ThrowsAsync<MicroagentException>(() => sources.InstallAsync(new KernelInstallRequest { From = f, Sha256 = new string('1', 64) }));
        Assert.Equal(ErrorKind.Permanent, refused.Kind);
        Assert.Empty(new KernelStore(_paths).List());

        var k = await sources.InstallAsync(new KernelInstallRequest { From = f, Sha256 = await Hashing.Sha256FileAsync(f) });
        Assert.Equal(Version, k.Version);
        var check = await sources.CheckAsync();
        Assert.True(check.Ok, check.Problem);
        Assert.Equal(k.Sha256, check.Kernel?.Sha256);

        await File.AppendAllTextAsync(k.KernelPath, "tampered");
        var tampered = await sources.CheckAsync();
        Assert.False(tampered.Ok);
        Assert.Contains("sha256 changed", tampered.Problem);
    }

    [Fact]
    public async Task Install_from_a_url_needs_a_sha256_and_keeps_nothing_when_it_differs()
    {
        string f = FakeBzImage();
        byte[] body = await File.ReadAllBytesAsync(f);
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        int port = ((IPEndPoint)server.LocalEndpoint).Port;
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var serving = Task.Run(async () =>
        {
            while (!cts.IsCancellationRequested)
            {
                using var c = await server.AcceptTcpClientAsync(cts.Token);
                var s = c.GetStream();
                var buf = new byte[4096];
                var request = new StringBuilder();
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    int n = await s.ReadAsync(buf, cts.Token);
                    if (n == 0) break;
                    request.Append(Encoding.ASCII.GetString(buf, 0, n));
                }
                await s.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"), cts.Token);
                await s.WriteAsync(body, cts.Token);
            }
        });
        var sources = new KernelSources(_paths);
        string url = $"http://127.0.0.1:{port}/vmlinuz-{Version}";

        var noSha = await Assert.ThrowsAsync<MicroagentException>(() => sources.InstallAsync(new KernelInstallRequest { Url = url }));
        Assert.Equal((ErrorKind.Invalid, "sha256"), (noSha.Kind, noSha.Field));
        var wrong = await Assert.ThrowsAsync<MicroagentException>(() => sources.InstallAsync(new KernelInstallRequest { Url = url, Sha256 = new string('2', 64) }));
        Assert.Equal(ErrorKind.Permanent, wrong.Kind);
        Assert.Contains("nothing was installed", wrong.Message);
        Assert.Empty(new KernelStore(_paths).List());
        Assert.Empty(Directory.GetFiles(_paths.Tmp));

        var k = await sources.InstallAsync(new KernelInstallRequest { Url = url, Sha256 = await Hashing.Sha256FileAsync(f) });
        Assert.Equal(Version, k.Version);
        Assert.Empty(Directory.GetFiles(_paths.Tmp));
        await cts.CancelAsync();
        server.Stop();
        await Assert.ThrowsAnyAsync<Exception>(() => serving);
    }

    [Fact]
    public async Task Only_one_source_at_a_time()
    {
        var e = await Assert.ThrowsAsync<MicroagentException>(() => new KernelSources(_paths).InstallAsync(new KernelInstallRequest { From = "a", Version = "1" }));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
    }
}
