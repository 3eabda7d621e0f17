using Microagent.Errors;
using Microagent.Protocol;
using Microagent.Vmm;

namespace Microagent.Workspaces;

/// <summary>The snapshot side of a workspace VM (docs/ARCHITECTURE.md "Snapshots"): the QMP steps of a capture, and a restore instead of a boot.</summary>
internal sealed partial class WorkspaceVm
{
    /// <summary>How long a restored guest's agent may take to answer once its vsock device is back.</summary>
    public static readonly TimeSpan AgentReturnTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Name prefix of the overlays a capture makes while QEMU runs (renamed to the root disk once it is gone).</summary>
    internal const string NextDiskPrefix = ".root.next-";

    /// <summary>The file QEMU writes the root disk to now: the root disk, or the overlay of the last capture (see <see cref="SettleDisk"/>).</summary>
    internal string ActiveDisk { get; set; } = "";

    /// <summary>
    /// Once QEMU is gone: the overlay the last capture made becomes the root disk again, and the other names captures left
    /// (second names of frozen layers) are removed.
    /// </summary>
    private void SettleDisk()
    {
        if (ActiveDisk.Length == 0 || _rootDisk.Length == 0) return;
        try
        {
            if (ActiveDisk != _rootDisk && File.Exists(ActiveDisk)) File.Move(ActiveDisk, _rootDisk, overwrite: true);
            foreach (string stale in System.IO.Directory.EnumerateFiles(_layout.Dir, NextDiskPrefix + "*")) File.Delete(stale);
            ActiveDisk = _rootDisk;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>The hostname on this QEMU's kernel command line (a restored VM keeps the one its snapshot was booted with).</summary>
    public string BootHostname { get; private init; } = "";

    private readonly string _rootDisk = "";

    /// <summary>The root disk QEMU was started with.</summary>
    private string RootDisk
    {
        init { _rootDisk = value; ActiveDisk = value; }
    }

    /// <summary>The VM's vsock device can be hot-plugged (<c>pc</c> under TCG): snapshots need it.</summary>
    public bool CanSnapshot { get; private init; }

    /// <summary>How long a restore's steps took (QMP up, state loaded, vsock plugged, cont, agent answered), for the supervisor log; empty for a cold boot.</summary>
    public string RestoreSteps { get; private set; } = "";

    /// <summary>Reads QMP events until <paramref name="name"/> matching <paramref name="match"/>; every other one goes to <paramref name="other"/>.</summary>
    internal async Task<QmpEvent> WaitEventAsync(string name, Func<QmpEvent, bool> match, Action<QmpEvent> other, CancellationToken ct)
    {
        while (await _qmp.Events.WaitToReadAsync(ct).ConfigureAwait(false))
            while (_qmp.Events.TryRead(out var e))
            {
                if (e.Name == name && match(e)) return e;
                other(e);
            }
        throw new IOException($"QEMU exited while waiting for {name}");
    }

    /// <summary>Hot-unplugs the vsock device (live guest connections are reset); the guest must be running.</summary>
    internal Task UnplugVsockAsync(QmpSnapshot.WaitEvent wait, CancellationToken ct) => QmpSnapshot.UnplugAsync(_qmp, wait, QemuCommandLine.VsockDeviceId, ct);

    /// <summary>Plugs the vsock device back; QEMU opens a new vhost-user session with the backend.</summary>
    internal Task PlugVsockAsync(CancellationToken ct) => QmpSnapshot.PlugVsockAsync(_qmp, ct);

    /// <summary>Saves the stopped VM's state into <paramref name="path"/>.</summary>
    internal Task SaveStateAsync(QmpSnapshot.WaitEvent wait, string path, CancellationToken ct) => QmpSnapshot.SaveStateAsync(_qmp, wait, path, ct);

    /// <summary>Dumps the stopped guest's memory into <paramref name="path"/> (an ELF core; <see cref="QmpSnapshot.DumpMemoryAsync"/>).</summary>
    internal Task DumpMemoryAsync(string path, CancellationToken ct) => QmpSnapshot.DumpMemoryAsync(_qmp, path, ct);

    /// <summary>Freezes the root disk's top layer; see <see cref="QmpSnapshot.FreezeDiskAsync"/>.</summary>
    internal Task FreezeDiskAsync(string overlay, string nodeName, string backing, CancellationToken ct) =>
        QmpSnapshot.FreezeDiskAsync(_qmp, "root", overlay, nodeName, backing, ct);

    /// <summary>Waits until the guest agent answers a ping again, retrying the connection (its vsock device was just plugged back).</summary>
    internal async Task WaitForAgentAsync(CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(AgentReturnTimeout);
        // Short waits between attempts (the guest answers within milliseconds of its vsock device's return) and a per-attempt
        // limit that starts short and grows, so a connection lost to a device not yet back costs little, while a guest slowed by
        // load still gets the full 2 s per attempt soon after.
        var delay = TimeSpan.FromMilliseconds(5);
        var limit = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            if (_qemu.Exited.IsCompleted) throw MicroagentException.Permanent($"QEMU exited (status {await _qemu.Exited.ConfigureAwait(false)}) before the restored guest answered");
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            attempt.CancelAfter(limit);
            limit = TimeSpan.FromMilliseconds(Math.Min(limit.TotalMilliseconds * 2, 2000));
            try
            {
                await Agent.PingAsync(attempt.Token).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                if (deadline.IsCancellationRequested)
                    throw MicroagentException.Transient($"the restored guest's agent did not answer within {AgentReturnTimeout.TotalSeconds:0} s: {e.Message}",
                        $"see the serial log:\n{Tail(_layout.SerialLog)}");
            }
            await Task.Delay(delay, deadline.Token).ConfigureAwait(false); // backoff between connection attempts, not a synchronisation
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 40));
        }
    }

    /// <summary>
    /// Starts the VM from a saved state instead of booting it: QEMU with <c>-incoming defer</c> and no vsock device on
    /// <paramref name="rootDisk"/> (a new overlay on the snapshot's frozen layer), the state loaded from <paramref name="memoryState"/>,
    /// the vsock device plugged back, <c>cont</c>, and the agent's first answer. <paramref name="hello"/> is what the guest said
    /// when it booted; <paramref name="bootHostname"/> the hostname on its kernel command line then (and <paramref name="extraKernelArgs"/> the rest).
    /// </summary>
    public static async Task<WorkspaceVm> RestoreAsync(string directory, BootAssets assets, string rootDisk, string memoryState, int memoryMiB, int cpus,
        string bootHostname, Hello hello, CancellationToken ct,
        int maxGuestConnections = Vsock.VsockBackendOptions.DefaultMaxGuestConnections, Action<int>? onGuestConnectionRefused = null, bool ephemeral = false,
        string extraKernelArgs = "")
    {
        if (assets.Accelerator.Accelerator == Accelerator.Kvm)
            throw MicroagentException.Unsupported("snapshots need the pc machine (TCG): under KVM the microvm vsock device cannot be hot-plugged",
                "boot from disk: `microagent start NAME`");
        var layout = new WorkspaceLayout(directory);
        layout.EnsureSocketPathsFit(ProtocolInfo.ReadyPort);
        var spec = new VmSpec
        {
            KernelPath = assets.Kernel.KernelPath, InitrdPath = assets.InitrdPath, RootDiskPath = rootDisk,
            MemoryMiB = memoryMiB, Cpus = cpus, Hostname = bootHostname, IncomingDefer = true, Ephemeral = ephemeral,
            VhostUserSocketPath = layout.VhostUserSocket, QmpSocketPath = layout.QmpSocket, SerialLogPath = layout.SerialLog,
            ExtraKernelArgs = extraKernelArgs,
        };
        var backend = NewBackend(spec, layout, maxGuestConnections, onGuestConnectionRefused);
        QemuProcess? qemu = null;
        QmpClient? qmp = null;
        WorkspaceVm? vm = null;
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var steps = new List<string>();
            void Step(string name) => steps.Add($"{name} {clock.ElapsedMilliseconds} ms");
            backend.Start();
            qemu = QemuProcess.Start(assets.Qemu.SystemBinary, QemuCommandLine.Build(spec, assets.Accelerator, assets.Qemu), directory);
            qmp = await ConnectQmpAsync(spec.QmpSocketPath, qemu, ct).ConfigureAwait(false);
            Step("QMP up");
            vm = new WorkspaceVm(layout, backend, qemu, qmp, hello) { BootHostname = bootHostname, CanSnapshot = true, RootDisk = rootDisk };
            var q = qmp;
            await QmpSnapshot.LoadStateAsync(qmp, (n, m, c) => vm.WaitEventAsync(n, m, _ => { }, c), memoryState, ct).ConfigureAwait(false);
            Step("state loaded");
            await QmpSnapshot.PlugVsockAsync(q, ct).ConfigureAwait(false);
            Step("vsock plugged");
            await q.ExecuteAsync("cont", null, ct).ConfigureAwait(false);
            Step("cont");
            await vm.WaitForAgentAsync(ct).ConfigureAwait(false);
            Step("agent answered");
            vm.RestoreSteps = string.Join(", ", steps);
            return vm;
        }
        catch (Exception e)
        {
            if (vm is not null) await vm.DisposeAsync().ConfigureAwait(false);
            else
            {
                if (qmp is not null) await qmp.DisposeAsync().ConfigureAwait(false);
                if (qemu is not null) await qemu.DisposeAsync().ConfigureAwait(false);
                await backend.DisposeAsync().ConfigureAwait(false);
            }
            if (e is MicroagentException or OperationCanceledException) throw;
            throw MicroagentException.Permanent($"the restore failed: {e.Message}{(qemu is null ? "" : " " + qemu.Stderr.Trim())}", "boot from disk: `microagent start NAME`", e);
        }
    }

    /// <summary>QEMU creates its QMP socket a moment after it starts: connect once it is there (or fail when QEMU exits first).</summary>
    private static async Task<QmpClient> ConnectQmpAsync(string path, QemuProcess qemu, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        var delay = TimeSpan.FromMilliseconds(5);
        while (true)
        {
            if (qemu.Exited.IsCompleted)
                throw MicroagentException.Permanent($"QEMU exited (status {await qemu.Exited.ConfigureAwait(false)}) before its QMP socket was up: {qemu.Stderr.Trim()}");
            if (File.Exists(path))
            {
                try
                {
                    var qmp = await QmpClient.ConnectAsync(path, deadline.Token).ConfigureAwait(false);
                    File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                    return qmp;
                }
                catch (MicroagentException) when (!deadline.IsCancellationRequested) { }
            }
            await Task.Delay(delay, deadline.Token).ConfigureAwait(false); // polling for a file QEMU creates; bounded
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 50));
        }
    }
}
