using System.Security.Cryptography;
using System.Text;
using Microagent.Images;
using Microagent.Kernels;
using Microagent.Protocol;
using Microagent.Vmm;
using Microagent.Workspaces;

namespace Microagent.EndToEnd.Tests.Vsock;

/// <summary>One real VM (booted through the library) shared by the transfer tests.</summary>
public sealed class BootedVm : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(MicroagentCli.StateDir, "workspaces", "vsock-e2e");

    internal WorkspaceVm Vm { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var paths = new StatePaths(MicroagentCli.StateDir);
        var baseline = await new ImageStore(paths).EnsureBaselineAsync("oci:" + Path.Combine(MicroagentCli.RepoRoot, "build", "images", "default"));
        var assets = await PrepareAssetsAsync(paths);
        StatePaths.EnsureDirectory(paths.Workspaces);
        StatePaths.EnsureDirectory(_dir);
        string disk = Path.Combine(_dir, "root.qcow2");
        await DiskOverlay.CreateAsync(baseline.Path, disk);
        Vm = await WorkspaceVm.BootAsync(_dir, assets, disk, memoryMiB: 512, cpus: 2, "vsock-e2e", ephemeral: true, CancellationToken.None);
    }

    /// <summary>What <see cref="BootAssets.PrepareAsync"/> gathers, with the built agent named explicitly (no process-wide variable).</summary>
    private static async Task<BootAssets> PrepareAssetsAsync(StatePaths paths)
    {
        var qemu = QemuInstallation.Locate(paths.Cache);
        var kernels = new KernelStore(paths);
        var kernel = await kernels.EnsureDefaultAsync();
        await kernels.VerifyAsync(kernel);
        string initrd = await new InitramfsBuilder(paths).EnsureAsync(kernel, Path.Combine(MicroagentCli.RepoRoot, "bin", "microagent-agent"));
        var accelerator = await new AcceleratorProbe(paths).ChooseAsync(qemu, kernel.KernelPath, kernel.Sha256);
        return new BootAssets(qemu, kernel, initrd, accelerator);
    }

    public async Task DisposeAsync()
    {
        if (Vm is not null)
        {
            await Vm.ShutdownAsync(TimeSpan.FromSeconds(5));
            await Vm.DisposeAsync();
        }
        Directory.Delete(_dir, true);
    }
}

/// <summary>Bulk and concurrent traffic through our vhost-user-vsock backend and a real guest kernel.</summary>
public sealed class VsockTransferTests(BootedVm fixture) : IClassFixture<BootedVm>
{
    private const int SixtyFourMiB = 64 * 1024 * 1024;

    [Fact]
    public async Task Moves_64_MiB_guest_to_host_with_matching_checksum()
    {
        using var stdout = new HashingStream();
        using var stderr = new MemoryStream();
        var result = await fixture.Vm.Agent.ExecAsync(new ExecRequest
        {
            Argv = ["sh", "-c", $"head -c {SixtyFourMiB} /dev/urandom > /tmp/blob && sha256sum /tmp/blob >&2 && cat /tmp/blob && rm /tmp/blob"],
            Mode = ExecModes.Stream,
        }, stdout: stdout, stderr: stderr);
        Assert.Equal(ExecStatuses.Exited, result.Status);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(SixtyFourMiB, stdout.Length);
        string guestSha = Encoding.UTF8.GetString(stderr.ToArray()).Split(' ')[0];
        Assert.Equal(guestSha, stdout.HexDigest());
    }

    [Fact]
    public async Task Moves_64_MiB_host_to_guest_with_matching_checksum()
    {
        var data = new byte[SixtyFourMiB];
        Random.Shared.NextBytes(data);
        using var stdout = new MemoryStream();
        var result = await fixture.Vm.Agent.ExecAsync(new ExecRequest { Argv = ["sha256sum"], Mode = ExecModes.Stream },
            stdin: new MemoryStream(data), stdout: stdout, stderr: Stream.Null);
        Assert.Equal(0, result.ExitCode);
        string guestSha = Encoding.UTF8.GetString(stdout.ToArray()).Split(' ')[0];
        Assert.Equal(Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant(), guestSha);
    }

    [Fact]
    public async Task Serves_50_concurrent_connections()
    {
        var tasks = Enumerable.Range(0, 50).Select(async i =>
        {
            var payload = new byte[64 * 1024 + i];
            new Random(i).NextBytes(payload);
            using var stdout = new MemoryStream();
            var result = await fixture.Vm.Agent.ExecAsync(new ExecRequest { Argv = ["cat"], Mode = ExecModes.Stream },
                stdin: new MemoryStream(payload), stdout: stdout, stderr: Stream.Null);
            Assert.Equal(0, result.ExitCode);
            Assert.Equal(payload, stdout.ToArray());
        });
        await Task.WhenAll(tasks);
    }

    /// <summary>Counts and hashes what is written, without keeping it.</summary>
    private sealed class HashingStream : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _length;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public string HexDigest() => Convert.ToHexString(_hash.GetHashAndReset()).ToLowerInvariant();
        public override void Write(byte[] buffer, int offset, int count) { _hash.AppendData(buffer, offset, count); _length += count; }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) _hash.Dispose(); base.Dispose(disposing); }
    }
}
