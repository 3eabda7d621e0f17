using System.Runtime.CompilerServices;
using Microagent.Access;
using Microagent.Agent;
using Microagent.Diagnostics;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Mediation;
using Microagent.Networking;
using Microagent.Protocol;
using Microagent.Tools;
using Microagent.Vsock;
using Microagent.Workspaces.Manager;

namespace Microagent.Workspaces;

/// <summary>Settings of a <see cref="WorkspaceManager"/>.</summary>
public sealed record WorkspaceManagerOptions
{
    /// <summary>
    /// The <c>microagent</c> executable that runs supervisors (<c>microagent __supervise NAME</c>). Null: <c>$MICROAGENT_BIN</c>,
    /// else this process when it is microagent, else the <c>Microagent</c> package's native <c>microagent</c> beside this
    /// program (<c>runtimes/linux-x64/native/</c>), else <c>microagent</c> beside the guest agent (<c>bin/</c>).
    /// </summary>
    public string? SupervisorExecutable { get; init; }
    /// <summary>How long a changing verb waits for another command's per-workspace lock before failing with <c>conflict</c>.</summary>
    public TimeSpan LockWait { get; init; } = TimeSpan.FromMinutes(3);
}

/// <summary>
/// Named workspaces: the public API the CLI uses (and .NET programs can). Each running workspace has a detached
/// supervisor that owns its VM; this class creates, starts and stops them, talks to the guest over the workspace's
/// hybrid vsock socket, and reconciles state with /proc when a supervisor has died. It is a facade: the work is done by
/// <see cref="SupervisorLauncher"/>, <see cref="Reconciler"/>, <see cref="StatusReader"/>, <see cref="WorkspaceCopier"/>
/// and <see cref="OneShotRun"/>, and inputs are checked by <see cref="WorkspaceValidator"/> against <see cref="WorkspaceLimits"/>.
/// Concurrency: verbs that change a workspace (create, start, halt, kill, delete, gc) hold its lock file
/// (<c>locks/NAME.lock</c>); a second caller <b>waits</b> up to <see cref="WorkspaceManagerOptions.LockWait"/>, then
/// gets <see cref="WorkspaceBusyException"/> (<c>conflict</c>); once it has the lock it sees the first caller's result
/// (e.g. <see cref="WorkspaceExistsException"/> for a second create). Reads (status, list, exec, cp) take no lock.
/// </summary>
public sealed partial class WorkspaceManager
{
    /// <summary>Environment variable naming the microagent executable used for supervisors.</summary>
    public const string BinaryVariable = "MICROAGENT_BIN";

    private readonly WorkspaceManagerOptions _options;
    private readonly Reconciler _reconciler;
    private readonly SupervisorLauncher _launcher;
    private readonly StatusReader _status;
    private readonly WorkspaceCopier _copier;
    private readonly PauseControl _pause;
    private readonly NetworkControl _network;
    private readonly ConsoleControl _console;
    private readonly QuarantineControl _quarantine;
    private readonly IControlClient _control;
    // Real supervisors only (the public constructor): the first create or start checks the host (HostPrerequisites).
    private readonly bool _checkHost;

    /// <summary>Creates a manager over <paramref name="paths"/> (default: <c>$MICROAGENT_STATE_DIR</c> or <c>~/.microagent</c>).</summary>
    public WorkspaceManager(StatePaths? paths = null, WorkspaceManagerOptions? options = null)
        : this(paths ?? new StatePaths(), options ?? new WorkspaceManagerOptions(),
            SystemProcessTable.Instance, DetachedSupervisorSpawner.Instance, SocketControlClient.Instance, SupervisorLauncher.DefaultStartTimeout)
    {
        _checkHost = true;
    }

    /// <summary>A manager over the given process table, supervisor spawner and control client (unit tests pass fakes).</summary>
    internal WorkspaceManager(StatePaths paths, WorkspaceManagerOptions options, IProcessTable processes, ISupervisorSpawner spawner,
        IControlClient control, TimeSpan startTimeout)
    {
        Paths = paths;
        _options = options;
        _reconciler = new Reconciler(paths, processes);
        _launcher = new SupervisorLauncher(options, processes, spawner, control, _reconciler, startTimeout);
        _status = new StatusReader(paths, processes, control, _reconciler);
        _copier = new WorkspaceCopier(paths, _status, Agent);
        _pause = new PauseControl(control, _reconciler);
        _network = new NetworkControl(control, _reconciler);
        _console = new ConsoleControl(control, _reconciler);
        _quarantine = new QuarantineControl(control, _reconciler, _console, processes);
        _control = control;
    }

    /// <summary>The state directory.</summary>
    public StatePaths Paths { get; }

    // ---- create / start --------------------------------------------------------------------------------

    /// <summary>Creates workspace <see cref="WorkspaceSpec.Name"/> (state <c>prepared</c>): resolves the image baseline, makes the disk overlay, stores the config.</summary>
    public async Task<WorkspaceStatus> CreateAsync(WorkspaceSpec spec, CancellationToken ct = default, IProgress<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var (store, profile, memory, cpus, size, ttl, hostname) = ResolveCreate(spec);
        var network = (spec.Network ?? new NetworkSpec()).Resolve();
        var model = spec.Model?.Resolve(null);
        if (_checkHost) await HostPrerequisites.EnsureAsync(Paths, ct).ConfigureAwait(false);

        StatePaths.EnsureDirectory(Paths.Workspaces);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        if (store.Exists) throw new WorkspaceExistsException(store.Name);
        var baseline = await new ImageStore(Paths).EnsureBaselineAsync(spec.Image, progress, ct).ConfigureAwait(false);
        bool createdDir = !Directory.Exists(store.Dir);
        StatePaths.EnsureDirectory(store.Dir);
        try
        {
            progress?.Report($"making the disk of {store.Name}");
            await DiskOverlay.CreateAsync(baseline.Path, store.DiskPath, ct).ConfigureAwait(false);
            long baselineMiB = (new FileInfo(baseline.Path).Length + (1 << 20) - 1) >> 20;
            size = DiskSizeMiB(size, baseline.Path);
            if (size > baselineMiB)
                await ExternalTool.RunAsync("qemu-img", "qemu-utils", ["resize", "-q", store.DiskPath, $"{size}M"], ct).ConfigureAwait(false);
            var disks = await Volumes.DataDisks.AttachAsync(Paths, store.Dir, spec.Disks, progress, ct).ConfigureAwait(false);
            store.WriteConfig(new WorkspaceConfig
            {
                Name = store.Name, Image = spec.Image, ImageDigest = baseline.ManifestDigest, BaselinePath = baseline.Path,
                Setup = spec.Setup, Exec = spec.Exec, Env = spec.Env, Hostname = hostname, Profile = profile.Name,
                MemoryMiB = memory, Cpus = cpus, SizeMiB = size, TtlSeconds = ttl, Vsock = spec.Vsock, Mediation = spec.Mediation, Shell = spec.Shell ?? WorkspaceLimits.DefaultShell, Disks = disks,
                Network = network,
                Model = model is null ? null : model with { Runner = model.Runner.ForStorage() },
                ImageEnv = baseline.Config.Env, ImageWorkingDir = baseline.Config.WorkingDir, ImageUser = baseline.Config.User,
                CreatedAt = DateTimeOffset.UtcNow,
            });
            store.Initialize($"created from {spec.Image ?? "the default image"} ({baseline.ManifestDigest[..19]}…)");
        }
        catch
        {
            if (createdDir) Reconciler.TryDeleteDir(store.Dir);
            throw;
        }
        return StatusReader.Project(store);
    }

    /// <summary>The checked inputs of a create: the same rules for <see cref="CreateAsync"/> and <see cref="PlanCreate"/>.</summary>
    private (WorkspaceStore Store, WorkspaceProfile Profile, int Memory, int Cpus, int Size, int Ttl, string Hostname) ResolveCreate(WorkspaceSpec spec)
    {
        var store = Store(spec.Name ?? throw new WorkspaceSpecException("a workspace name is required", "name it with letters, digits, '.', '_' and '-'") { Field = "name" });
        var profile = WorkspaceProfile.Parse(spec.Profile ?? WorkspaceProfile.Tiny.Name);
        int memory = spec.MemoryMiB ?? profile.MemoryMiB, cpus = spec.Cpus ?? profile.Cpus, size = spec.SizeMiB ?? profile.DiskMiB;
        int ttl = spec.TtlSeconds ?? 0;
        WorkspaceValidator.Create(memory, cpus, size, ttl, spec);
        Volumes.DiskRequest.CheckList(spec.Disks);
        string hostname = spec.Hostname ?? store.Name;
        WorkspaceValidator.Hostname(hostname);
        return (store, profile, memory, cpus, size, ttl, hostname);
    }

    /// <summary>What <see cref="CreateAsync"/> would do with <paramref name="spec"/>, checked by the same rules, without doing it (nothing is pulled or written).</summary>
    public WorkspacePlan PlanCreate(WorkspaceSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var (store, profile, memory, cpus, size, ttl, _) = ResolveCreate(spec);
        (spec.Network ?? new NetworkSpec()).Resolve();
        spec.Model?.Resolve(null);
        if (store.Exists) throw new WorkspaceExistsException(store.Name);
        return WorkspacePlanner.Plan(Paths, "create", store.Name, spec, memory, cpus, size, ttl, profile.Name, _ => spec.Exec is { } e ? [e] : []);
    }

    /// <summary>What <see cref="RunAsync"/> would do with <paramref name="options"/>, checked by the same rules, without doing it.</summary>
    public WorkspacePlan PlanRun(RunOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        WorkspaceValidator.Run(options);
        var spec = new WorkspaceSpec { Image = options.Image, MemoryMiB = options.MemoryMiB, Cpus = options.Cpus, Disks = options.Disks, Network = options.Network };
        return WorkspacePlanner.Plan(Paths, "run", null, spec, options.MemoryMiB, options.Cpus, WorkspaceProfile.Tiny.DiskMiB, 0, WorkspaceProfile.Tiny.Name,
            config => config is null ? options.Command : Runner.ResolveArgv(options, config));
    }

    /// <summary>
    /// Boots the workspace from its disk (from prepared, halted, stopped or failed) through a new detached supervisor and
    /// returns once the guest serves exec (setup runs first, on first boot only), reporting phases to <see cref="StartOptions.Progress"/>.
    /// Starting/running → <c>conflict</c>; quarantined → <c>conflict</c> with guidance. Boot or setup failure →
    /// <see cref="WorkspaceFailedException"/> with the serial-log tail. Cancelled → the VM is killed, the workspace and its
    /// disk are kept (stopped), and <see cref="WorkspaceInterruptedException"/> says so.
    /// </summary>
    public async Task<WorkspaceStatus> StartAsync(string name, StartOptions? options = null, CancellationToken ct = default)
    {
        options ??= new StartOptions();
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        var config = StatusReader.ReadConfigOrThrow(store);
        _reconciler.Reconcile(store);
        if (options.FromSnapshot is { } tag) EnsureCanRestoreInPlace(store, tag);
        WorkspaceStateMachine.EnsureCanStart(store.Name, store.ReadState().State);

        var boot = BootOf(config, options);
        var pairing = options.Model is { IsEmpty: false } m ? m.Resolve(config.Model) : config.Model;
        WorkspaceValidator.Boot(boot.MemoryMiB, boot.Cpus, boot.TtlSeconds, boot.Mediation, boot.Vsock);
        string? supervisor = await BootChoices.CheckAsync(Paths, options, ct).ConfigureAwait(false);
        string readyPath = store.HybridSocketPath + "_" + ProtocolInfo.ReadyPort;
        if (readyPath.Length > 107)
            throw new WorkspaceSpecException($"workspace path is too long for a unix socket ({readyPath.Length} bytes, limit 107): {store.Dir}",
                "use a shorter state directory or workspace name") { Field = "name" };
        // A shared disk held by another running workspace is refused here, before anything boots; the supervisor then holds the locks.
        foreach (var l in Volumes.DataDisks.Lock(Paths, store.Name, config.Disks)) l.Dispose();
        if (_checkHost) await HostPrerequisites.EnsureAsync(Paths, ct).ConfigureAwait(false);
        await PrepareRestoreAsync(store, boot, options.FromSnapshot, ct).ConfigureAwait(false);
        boot = await WarmStart.PrepareAsync(Paths, store, config, boot, options, ct).ConfigureAwait(false);
        // The model pairing is re-done on every start (docs/ARCHITECTURE.md "Model runner"); a start that fails releases it.
        if (pairing is not null) boot = boot with { Model = await Models.ModelPairer.AttachAsync(Paths, store, pairing, options.Model?.Env ?? [], options.Progress, ct).ConfigureAwait(false) };
        try { await _launcher.StartAsync(store, config, boot, options.Progress, ct, supervisor).ConfigureAwait(false); }
        catch when (pairing is not null)
        {
            await Models.ModelPairer.ReleaseAsync(Paths, store, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        return await _status.WithMediationAsync(store, ct).ConfigureAwait(false);
    }

    /// <summary>What a start with <paramref name="options"/> boots with.</summary>
    private static BootRecord BootOf(WorkspaceConfig config, StartOptions options)
    {
        var profile = options.Profile is { } p ? WorkspaceProfile.Parse(p) : null;
        return new BootRecord
        {
            MemoryMiB = options.MemoryMiB ?? profile?.MemoryMiB ?? config.MemoryMiB,
            Cpus = options.Cpus ?? profile?.Cpus ?? config.Cpus,
            TtlSeconds = options.TtlSeconds ?? config.TtlSeconds,
            Vsock = options.Vsock.Count > 0 ? options.Vsock : config.Vsock,
            Mediation = options.Mediation ?? config.Mediation,
            Network = options.Network is { } n ? n.Resolve(config.Network) : config.Network ?? NetworkConfig.Default,
            OwnerPid = options.OwnerPid,
            Ephemeral = options.Ephemeral,
            KernelOverride = options.Kernel is { } k ? Path.GetFullPath(k) : null,
            Backend = options.Backend,
        };
    }

    // ---- exec / cp -------------------------------------------------------------------------------------

    /// <summary>Runs a command in a running workspace and captures its output (capped at 4 MiB per stream unless <see cref="ExecOptions.MaxOutputBytes"/>).</summary>
    public Task<WorkspaceExecResult> ExecAsync(string name, ExecOptions options, CancellationToken ct = default) =>
        ExecCoreAsync(name, options, null, null, ct);

    /// <summary>Runs a command in a running workspace, writing stdout and stderr to the given streams as they are produced.</summary>
    public Task<WorkspaceExecResult> ExecStreamAsync(string name, ExecOptions options, Stream stdout, Stream stderr, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        return ExecCoreAsync(name, options, stdout, stderr, ct);
    }

    private async Task<WorkspaceExecResult> ExecCoreAsync(string name, ExecOptions options, Stream? stdout, Stream? stderr, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        WorkspaceValidator.Exec(options);
        bool streaming = stdout is not null || stderr is not null;
        return await ExecCoreAsync(Store(name), config => GuestCommand.In(config, options.Command).With(options, streaming), options.Stdin, stdout, stderr, ct)
            .ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="command"/> (made from the running workspace's config) in the guest; streamed when <see cref="GuestCommand.Streaming"/>.</summary>
    internal async Task<WorkspaceExecResult> ExecCoreAsync(WorkspaceStore store, Func<WorkspaceConfig, GuestCommand> command, Stream? stdin,
        Stream? stdout, Stream? stderr, CancellationToken ct)
    {
        var cmd = command(_status.EnsureRunning(store));
        if (cmd.Streaming) (stdout, stderr) = (stdout ?? Stream.Null, stderr ?? Stream.Null);
        try
        {
            var result = await Agent(store).ExecAsync(cmd.ToRequest(), stdin, stdout, stderr, ct).ConfigureAwait(false);
            return WorkspaceExecResult.From(result);
        }
        catch (MicroagentException e) when (e is not WorkspaceStateException)
        {
            await _status.ThrowIfNoLongerRunningAsync(store, e, ct).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Copies a host file, directory tree or symlink into a running workspace (modes kept; like <c>cp -a</c>).</summary>
    public async Task<CopyResult> CopyToAsync(string name, string hostPath, string guestPath, CancellationToken ct = default) =>
        await _copier.CopyToAsync(Store(name), hostPath, guestPath, ct).ConfigureAwait(false);

    /// <summary>Copies a file, directory tree or symlink out of a running workspace (modes kept).</summary>
    public async Task<CopyResult> CopyFromAsync(string name, string guestPath, string hostPath, CancellationToken ct = default) =>
        await _copier.CopyFromAsync(Store(name), guestPath, hostPath, ct).ConfigureAwait(false);

    /// <summary>
    /// Copies a host file or directory tree into a running workspace, reading only what <paramref name="access"/> allows
    /// (a symlink is followed and must lead inside a root; the read goes through the pinned descriptor).
    /// </summary>
    public async Task<CopyResult> CopyToAsync(string name, string hostPath, string guestPath, HostAccess access, CancellationToken ct = default) =>
        await _copier.CopyToAsync(Store(name), hostPath, guestPath, access, ct).ConfigureAwait(false);

    /// <summary>
    /// Copies out of a running workspace, writing only where <paramref name="access"/> allows, never through a symlink, and
    /// replacing an existing destination only with <paramref name="overwrite"/>; the result names the final host path.
    /// </summary>
    public async Task<CopyResult> CopyFromAsync(string name, string guestPath, string hostPath, HostAccess access, bool overwrite,
        CancellationToken ct = default) =>
        await _copier.CopyFromAsync(Store(name), guestPath, hostPath, access, overwrite, ct).ConfigureAwait(false);

    // ---- halt / kill / delete ----------------------------------------------------------------------------

    /// <summary>
    /// Gracefully powers the guest off (keeping the disk): <c>halted</c>. A guest that does not power off within
    /// <paramref name="window"/> (default 20 s) is killed and the workspace becomes <c>failed</c>. Not running: no-op.
    /// </summary>
    public Task<WorkspaceStatus> HaltAsync(string name, TimeSpan? window = null, CancellationToken ct = default) => HaltAsync(name, window, null, ct);

    /// <summary>As <see cref="HaltAsync(string, TimeSpan?, CancellationToken)"/>; <paramref name="reason"/> (one line) is recorded in the halt's events.</summary>
    public async Task<WorkspaceStatus> HaltAsync(string name, TimeSpan? window, string? reason, CancellationToken ct = default)
    {
        WorkspaceValidator.Reason(reason);
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        StatusReader.ReadConfigOrThrow(store);
        var state = _reconciler.Reconcile(store);
        if (state.State == WorkspaceState.Quarantined) await _quarantine.ReleaseAsync(store, state, kill: false, reason, ct).ConfigureAwait(false);
        else if (state.State.IsActive())
            await _launcher.StopAsync(store, state, kill: false, window ?? WorkspaceSupervisor.DefaultHaltWindow, reason, ct).ConfigureAwait(false);
        await Models.ModelPairer.ReleaseAsync(Paths, store, ct).ConfigureAwait(false);
        return StatusReader.Project(store);
    }

    /// <summary>Force-stops the VM (no guest shutdown): <c>stopped</c>. Not running: no-op.</summary>
    public Task<WorkspaceStatus> KillAsync(string name, CancellationToken ct = default) => KillAsync(name, null, ct);

    /// <summary>As <see cref="KillAsync(string, CancellationToken)"/>; <paramref name="reason"/> (one line) is recorded in the kill's event.</summary>
    public async Task<WorkspaceStatus> KillAsync(string name, string? reason, CancellationToken ct = default)
    {
        WorkspaceValidator.Reason(reason);
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        StatusReader.ReadConfigOrThrow(store);
        var state = _reconciler.Reconcile(store);
        if (state.State == WorkspaceState.Quarantined) await _quarantine.ReleaseAsync(store, state, kill: true, reason, ct).ConfigureAwait(false);
        else if (state.State.IsActive()) await _launcher.StopAsync(store, state, kill: true, TimeSpan.Zero, reason, ct).ConfigureAwait(false);
        await Models.ModelPairer.ReleaseAsync(Paths, store, ct).ConfigureAwait(false);
        return StatusReader.Project(store);
    }

    /// <summary>
    /// Deletes the workspace and everything under its directory. Running: <c>conflict</c> unless
    /// <see cref="DeleteOptions.StopRunning"/> (halt first) or <see cref="DeleteOptions.Force"/> (kill first).
    /// Deleting an absent workspace succeeds with <see cref="DeleteResult.Existed"/> false.
    /// </summary>
    public async Task<DeleteResult> DeleteAsync(string name, DeleteOptions? options = null, CancellationToken ct = default)
    {
        options ??= new DeleteOptions();
        var store = Store(name);
        if (!Directory.Exists(store.Dir)) return new DeleteResult(store.Name, false, false);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        if (!Directory.Exists(store.Dir)) return new DeleteResult(store.Name, false, false);
        EnsureNoForksDepend(store);
        bool stopped = false;
        if (store.Exists)
        {
            var state = _reconciler.Reconcile(store);
            if (state.State.IsActive())
            {
                if (!options.Force && !options.StopRunning)
                    throw new WorkspaceStateException(store.Name, state.State, $"workspace '{store.Name}' is {state.State.WireName()}",
                        $"`microagent delete {store.Name} --yes` halts it first; `microagent delete {store.Name} --force` kills it first");
                await _launcher.StopAsync(store, state, kill: options.Force, WorkspaceSupervisor.DefaultHaltWindow, ct).ConfigureAwait(false);
                stopped = true;
            }
        }
        _reconciler.KillStrayQemu(store);
        await Models.ModelPairer.ReleaseAsync(Paths, store, CancellationToken.None).ConfigureAwait(false);
        Reconciler.TryDeleteDir(store.Dir);
        if (Directory.Exists(store.Dir))
            throw MicroagentException.Permanent($"could not remove {store.Dir} completely", "check permissions and remove it by hand");
        return new DeleteResult(store.Name, true, stopped);
    }

    // ---- status / list / events / logs / result / wait ---------------------------------------------------

    /// <summary>The workspace's state (reconciled with /proc), config, pids, readiness, disk usage and hashes.</summary>
    public async Task<WorkspaceStatus> GetStatusAsync(string name, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        var store = Store(name);
        StatusReader.ReadConfigOrThrow(store);
        _reconciler.TryReconcile(store);
        return await _status.WithMediationAsync(store, ct).ConfigureAwait(false);
    }

    /// <summary>Every workspace, by name.</summary>
    public Task<IReadOnlyList<WorkspaceStatus>> ListAsync(CancellationToken ct = default) => Task.FromResult(_status.List(ct));

    /// <summary>The workspace's lifecycle events, oldest first; with <paramref name="follow"/>, then new ones as they happen until the workspace reaches a terminal state or <paramref name="ct"/> is cancelled.</summary>
    public async IAsyncEnumerable<WorkspaceEvent> ReadEventsAsync(string name, bool follow = false, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var e in _status.ReadEventsAsync(Store(name), follow, ct).ConfigureAwait(false)) yield return e;
    }

    /// <summary>Copies the guest serial console log to <paramref name="output"/>; with <paramref name="follow"/>, keeps copying until the workspace reaches a terminal state.</summary>
    public async Task ReadLogAsync(string name, Stream output, bool follow = false, CancellationToken ct = default) =>
        await _status.ReadLogAsync(Store(name), output, follow, ct).ConfigureAwait(false);

    /// <summary>The structured result of the workload (<see cref="WorkspaceSpec.Exec"/>) of the last start.</summary>
    public Task<WorkloadResult> GetResultAsync(string name, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult(_status.GetResult(Store(name)));
    }

    /// <summary>Waits until the workspace is halted, stopped, failed (or was never started); <see cref="WorkspaceTimeoutException"/> after <paramref name="timeout"/>.</summary>
    public async Task<WorkspaceStatus> WaitAsync(string name, TimeSpan? timeout = null, CancellationToken ct = default) =>
        await _status.WaitAsync(Store(name), timeout, ct).ConfigureAwait(false);

    // ---- gc / run ---------------------------------------------------------------------------------------

    /// <summary>Reaps what is orphaned: state of workspaces whose supervisor died, stray QEMU processes, stale sockets, directories of killed one-shot runs.</summary>
    public Task<GcReport> GcAsync(CancellationToken ct = default)
    {
        try { return Task.FromResult(_reconciler.Gc(ct)); }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { return Task.FromCanceled<GcReport>(ct); }
        catch (Exception e) { return Task.FromException<GcReport>(e); }
    }

    /// <summary>
    /// A one-shot run on the workspace verbs: create <c>run-XXXX</c>, start it (owned by this process: if this process dies
    /// the supervisor kills the VM and removes the workspace), exec, then delete (or halt and keep with <see cref="RunOptions.Keep"/>).
    /// Cancelled → the workspace is removed and <see cref="WorkspaceInterruptedException"/> says so.
    /// </summary>
    public Task<RunResult> RunAsync(RunOptions options, CancellationToken ct = default) => new OneShotRun(this).RunAsync(options, ct);

    // ---- helpers ---------------------------------------------------------------------------------------

    private WorkspaceStore Store(string name) => new(Paths, name);

    private static AgentClient Agent(WorkspaceStore store) =>
        new(ct => HybridVsock.ConnectAsync(store.HybridSocketPath, ProtocolInfo.AgentPort, ct));

    private async Task<FileLock> LockAsync(WorkspaceStore store, CancellationToken ct) =>
        await FileLock.AcquireAsync(store.LockPath, _options.LockWait, ct).ConfigureAwait(false) ?? throw new WorkspaceBusyException(store.Name);
}
