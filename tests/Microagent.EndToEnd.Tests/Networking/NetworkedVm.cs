using System.Text;
using Microagent.Images;
using Microagent.Kernels;
using Microagent.Protocol;
using Microagent.Vmm;
using Microagent.Workspaces;

namespace Microagent.EndToEnd.Tests.Networking;

/// <summary>A real VM booted through the library with its network set up (<c>user</c> unless a subclass says), and a <see cref="StandInBroker"/>.</summary>
public class NetworkedVm : IAsyncLifetime
{
    private readonly string _name;
    private readonly string _dir;
    private readonly string _mode;

    protected NetworkedVm(string name, string mode = NetworkInfo.ModeUser)
    {
        _name = name;
        _mode = mode;
        _dir = Path.Combine(MicroagentCli.StateDir, "workspaces", name);
    }

    public NetworkedVm() : this("net-guest-e2e") { }

    internal WorkspaceVm Vm { get; private set; } = null!;
    public StandInBroker Broker { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var paths = new StatePaths(MicroagentCli.StateDir);
        var baseline = await new ImageStore(paths).EnsureBaselineAsync("oci:" + Path.Combine(MicroagentCli.RepoRoot, "build", "images", "default"));
        var qemu = QemuInstallation.Locate(paths.Cache);
        var kernels = new KernelStore(paths);
        var kernel = await kernels.EnsureDefaultAsync();
        await kernels.VerifyAsync(kernel);
        string initrd = await new InitramfsBuilder(paths).EnsureAsync(kernel, Path.Combine(MicroagentCli.RepoRoot, "bin", "microagent-agent"));
        var accelerator = await new AcceleratorProbe(paths).ChooseAsync(qemu, kernel.KernelPath, kernel.Sha256);
        StatePaths.EnsureDirectory(paths.Workspaces);
        StatePaths.EnsureDirectory(_dir);
        string disk = Path.Combine(_dir, "root.qcow2");
        await DiskOverlay.CreateAsync(baseline.Path, disk);
        Vm = await WorkspaceVm.BootAsync(_dir, new BootAssets(qemu, kernel, initrd, accelerator), disk, memoryMiB: 512, cpus: 2, _name, ephemeral: true, CancellationToken.None);
        Broker = new StandInBroker(Vm.HybridSocketPath);
        await Vm.Agent.SetUpNetworkAsync(_mode);
    }

    /// <summary>Runs <paramref name="script"/> with sh as root; (exit code, stdout, stderr).</summary>
    public async Task<(int Exit, string Out, string Err)> ShAsync(string script, long timeoutMs = 30_000)
    {
        var r = await Vm.Agent.ExecAsync(new ExecRequest { Argv = ["sh", "-c", script], TimeoutMs = timeoutMs });
        return (r.Status == ExecStatuses.Exited ? r.ExitCode : -1, Encoding.UTF8.GetString(r.Stdout ?? []), Encoding.UTF8.GetString(r.Stderr ?? []));
    }

    public async Task DisposeAsync()
    {
        Broker?.Dispose();
        if (Vm is not null)
        {
            await Vm.ShutdownAsync(TimeSpan.FromSeconds(5));
            await Vm.DisposeAsync();
        }
        Directory.Delete(_dir, true);
    }
}

/// <summary>A second VM for the test that tears its own network down as root.</summary>
public sealed class FlushedVm() : NetworkedVm("net-guest-flush");

/// <summary>A VM whose network is <c>isolated</c> from its first request.</summary>
public sealed class IsolatedVm() : NetworkedVm("net-guest-isolated", NetworkInfo.ModeIsolated);
