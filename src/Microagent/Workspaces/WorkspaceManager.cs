using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Microagent.Agent;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Mediation;
using Microagent.Protocol;
using Microagent.Tools;
using Microagent.Vsock;

namespace Microagent.Workspaces;

/// <summary>Settings of a <see cref="WorkspaceManager"/>.</summary>
public sealed record WorkspaceManagerOptions
{
    /// <summary>
    /// The <c>microagent</c> executable that runs supervisors (<c>microagent __supervise NAME</c>). Null: <c>$MICROAGENT_BIN</c>,
    /// else this process when it is microagent, else <c>microagent</c> beside the guest agent (<c>bin/</c>).
    /// </summary>
    public string? SupervisorExecutable { get; init; }
    /// <summary>How long a changing verb waits for another command's per-workspace lock before failing with <c>conflict</c>.</summary>
    public TimeSpan LockWait { get; init; } = TimeSpan.FromMinutes(3);
}

/// <summary>
/// Named workspaces: the public API the CLI uses (and .NET programs can). Each running workspace has a detached
/// supervisor that owns its VM; this class creates, starts and stops them, talks to the guest over the workspace's
/// hybrid vsock socket, and reconciles state with /proc when a supervisor has died.
/// Concurrency: verbs that change a workspace (create, start, halt, kill, delete, gc) hold its lock file
/// (<c>locks/NAME.lock</c>); a second caller <b>waits</b> up to <see cref="WorkspaceManagerOptions.LockWait"/>, then
/// gets <see cref="WorkspaceBusyException"/> (<c>conflict</c>); once it has the lock it sees the first caller's result
/// (e.g. <see cref="WorkspaceExistsException"/> for a second create). Reads (status, list, exec, cp) take no lock.
/// </summary>
public sealed class WorkspaceManager
{
    /// <summary>Environment variable naming the microagent executable used for supervisors.</summary>
    public const string BinaryVariable = "MICROAGENT_BIN";

    private static readonly TimeSpan StartTimeout = WorkspaceVm.BootTimeout + TimeSpan.FromMinutes(2);
    private readonly WorkspaceManagerOptions _options;

    /// <summary>Creates a manager over <paramref name="paths"/> (default: <c>$MICROAGENT_STATE_DIR</c> or <c>~/.microagent</c>).</summary>
    public WorkspaceManager(StatePaths? paths = null, WorkspaceManagerOptions? options = null)
    {
        Paths = paths ?? new StatePaths();
        _options = options ?? new WorkspaceManagerOptions();
    }

    /// <summary>The state directory.</summary>
    public StatePaths Paths { get; }

    // ---- create / start --------------------------------------------------------------------------------

    /// <summary>Creates workspace <see cref="WorkspaceSpec.Name"/> (state <c>prepared</c>): resolves the image baseline, makes the disk overlay, stores the config.</summary>
    public async Task<WorkspaceStatus> CreateAsync(WorkspaceSpec spec, CancellationToken ct = default, IProgress<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var store = Store(spec.Name ?? throw new WorkspaceSpecException("a workspace name is required", "pass NAME or --name"));
        var profile = WorkspaceProfile.Parse(spec.Profile ?? WorkspaceProfile.Tiny.Name);
        int memory = spec.MemoryMiB ?? profile.MemoryMiB, cpus = spec.Cpus ?? profile.Cpus, size = spec.SizeMiB ?? profile.DiskMiB;
        int ttl = spec.TtlSeconds ?? 0;
        ValidateSizes(memory, cpus, ttl);
        if (size is < 64 or > 1024 * 1024) throw new WorkspaceSpecException($"--size-mib {size} is out of range", "use 64..1048576 MiB");
        ValidateEnv(spec.Env);
        ValidateMediation(spec.Mediation, spec.Vsock);
        string hostname = spec.Hostname ?? store.Name;
        if (hostname.Length is 0 or > 63 || hostname.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '.')))
            throw new WorkspaceSpecException($"hostname '{hostname}' is invalid", "use letters, digits, '-' and '.'; at most 63 characters");

        StatePaths.EnsureDirectory(Paths.Workspaces);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        if (store.Exists) throw new WorkspaceExistsException(store.Name);
        var baseline = await new ImageStore(Paths).EnsureBaselineAsync(spec.Image, progress, ct).ConfigureAwait(false);
        bool createdDir = !Directory.Exists(store.Dir);
        StatePaths.EnsureDirectory(store.Dir);
        try
        {
            await DiskOverlay.CreateAsync(baseline.Path, store.DiskPath, ct).ConfigureAwait(false);
            long baselineMiB = (new FileInfo(baseline.Path).Length + (1 << 20) - 1) >> 20;
            size = (int)Math.Max(size, baselineMiB);
            if (size > baselineMiB)
                await ExternalTool.RunAsync("qemu-img", "qemu-utils", ["resize", "-q", store.DiskPath, $"{size}M"], ct).ConfigureAwait(false);
            store.WriteConfig(new WorkspaceConfig
            {
                Name = store.Name, Image = spec.Image, ImageDigest = baseline.ManifestDigest, BaselinePath = baseline.Path,
                Setup = spec.Setup, Exec = spec.Exec, Env = spec.Env, Hostname = hostname, Profile = profile.Name,
                MemoryMiB = memory, Cpus = cpus, SizeMiB = size, TtlSeconds = ttl, Vsock = spec.Vsock, Mediation = spec.Mediation,
                ImageEnv = baseline.Config.Env, ImageWorkingDir = baseline.Config.WorkingDir, ImageUser = baseline.Config.User,
                CreatedAt = DateTimeOffset.UtcNow,
            });
            store.Initialize($"created from {spec.Image ?? "the default image"} ({baseline.ManifestDigest[..19]}…)");
        }
        catch
        {
            if (createdDir) TryDeleteDir(store.Dir);
            throw;
        }
        return Status(store);
    }

    /// <summary>
    /// Boots the workspace from its disk (from prepared, halted, stopped or failed) through a new detached supervisor and
    /// returns once the guest serves exec (setup runs first, on first boot only). Starting/running → <c>conflict</c>;
    /// quarantined → <c>conflict</c> with guidance. Boot or setup failure → <see cref="WorkspaceFailedException"/> with the serial-log tail.
    /// </summary>
    public async Task<WorkspaceStatus> StartAsync(string name, StartOptions? options = null, CancellationToken ct = default)
    {
        options ??= new StartOptions();
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        var config = ReadConfigOrThrow(store);
        Reconcile(store);
        WorkspaceStateMachine.EnsureCanStart(store.Name, store.ReadState().State);

        var profile = options.Profile is { } p ? WorkspaceProfile.Parse(p) : null;
        var boot = new BootRecord
        {
            MemoryMiB = options.MemoryMiB ?? profile?.MemoryMiB ?? config.MemoryMiB,
            Cpus = options.Cpus ?? profile?.Cpus ?? config.Cpus,
            TtlSeconds = options.TtlSeconds ?? config.TtlSeconds,
            Vsock = options.Vsock.Count > 0 ? options.Vsock : config.Vsock,
            Mediation = options.Mediation ?? config.Mediation,
            OwnerPid = options.OwnerPid,
            Ephemeral = options.Ephemeral,
        };
        ValidateSizes(boot.MemoryMiB, boot.Cpus, boot.TtlSeconds);
        ValidateMediation(boot.Mediation, boot.Vsock);
        string readyPath = store.HybridSocketPath + "_" + ProtocolInfo.ReadyPort;
        if (readyPath.Length > 107)
            throw new WorkspaceSpecException($"workspace path is too long for a unix socket ({readyPath.Length} bytes, limit 107): {store.Dir}", "use a shorter --state-dir or name");
        string exe = LocateExecutable();
        store.WriteBoot(boot);
        if (config.Exec is not null) File.Delete(store.ResultPath);
        foreach (string f in store.RuntimeFiles().ToList()) File.Delete(f);
        store.ReadEvents(0, out long eventsOffset);
        store.Transition(WorkspaceState.Starting, "start requested", r => r with { Boot = boot, LastActivity = null });

        int pid;
        try { pid = SpawnSupervisor(exe, store); }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            store.Transition(WorkspaceState.Failed, $"cannot start the supervisor: {e.Message}");
            throw MicroagentException.Permanent($"cannot start the supervisor ({exe}): {e.Message}", $"check {BinaryVariable} or run `make build`", e);
        }
        long? startTime = ProcessTable.StartTime(pid);
        if (store.ReadState() is { SupervisorPid: null } s && s.State == WorkspaceState.Starting)
            store.Update(r => r.SupervisorPid is null ? r with { SupervisorPid = pid, SupervisorStartTime = startTime } : r);

        try
        {
            await WaitForReadyAsync(store, pid, startTime, eventsOffset, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            ProcessTable.Kill(pid);
            await ProcessTable.WaitForExitAsync(pid, startTime, TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(false);
            KillStrayQemu(store);
            if (store.ReadState().State.IsActive()) ForceState(store, WorkspaceState.Stopped, "start was interrupted; the VM was killed");
            throw;
        }
        return await WithMediationAsync(store, Status(store), ct).ConfigureAwait(false);
    }

    private async Task WaitForReadyAsync(WorkspaceStore store, int pid, long? startTime, long eventsOffset, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var events = store.ReadEvents(eventsOffset, out _);
            if (events.Any(e => e.State == WorkspaceState.Running)) return;
            var state = store.ReadState();
            if (!state.State.IsActive())
            {
                throw new WorkspaceFailedException(store.Name, $"workspace '{store.Name}' did not start: {state.Detail}",
                    $"see `microagent logs {store.Name}` (serial console) and {store.SupervisorLogPath}");
            }
            if (!ProcessTable.IsAlive(pid, startTime))
            {
                Reconcile(store);
                var after = store.ReadState();
                throw new WorkspaceFailedException(store.Name, $"workspace '{store.Name}' did not start: {after.Detail}",
                    $"supervisor log tail:\n{WorkspaceVm.Tail(store.SupervisorLogPath, 10)}");
            }
            if (deadline.Elapsed > StartTimeout)
            {
                ProcessTable.Kill(pid);
                await ProcessTable.WaitForExitAsync(pid, startTime, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
                KillStrayQemu(store);
                ForceState(store, WorkspaceState.Failed, $"the guest did not become ready within {StartTimeout.TotalSeconds:0} s");
                throw new WorkspaceFailedException(store.Name, $"workspace '{store.Name}' did not become ready in time",
                    $"serial log tail:\n{WorkspaceVm.Tail(store.SerialLogPath)}");
            }
            await Task.Delay(25, ct).ConfigureAwait(false);
        }
    }

    private static int SpawnSupervisor(string exe, WorkspaceStore store)
    {
        // A new session, stdio on the supervisor log: it outlives this process and holds none of its pipes.
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec setsid \"$0\" \"$@\" </dev/null >>\"$MICROAGENT_SUPERVISOR_LOG\" 2>&1");
        psi.ArgumentList.Add(exe);
        psi.ArgumentList.Add(WorkspaceSupervisor.HiddenVerb);
        psi.ArgumentList.Add(store.Name);
        psi.ArgumentList.Add("--state-dir");
        psi.ArgumentList.Add(store.Paths.Root);
        psi.Environment["MICROAGENT_SUPERVISOR_LOG"] = store.SupervisorLogPath;
        using (File.Open(store.SupervisorLogPath, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite })) { }
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("Process.Start returned null");
        return p.Id;
    }

    private string LocateExecutable()
    {
        if (_options.SupervisorExecutable is { } configured) return configured;
        if (Environment.GetEnvironmentVariable(BinaryVariable) is { Length: > 0 } env) return env;
        if (Environment.ProcessPath is { } self && Path.GetFileName(self) == "microagent") return self;
        try
        {
            string beside = Path.Combine(Path.GetDirectoryName(AgentLocator.Find())!, "microagent");
            if (File.Exists(beside)) return beside;
        }
        catch (MicroagentException) { }
        throw MicroagentException.NotFound("the microagent executable (which runs workspace supervisors) was not found",
            $"set {BinaryVariable} to bin/microagent, or WorkspaceManagerOptions.SupervisorExecutable");
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
        if (options.Command.Count == 0 || string.IsNullOrEmpty(options.Command[0]))
            throw MicroagentException.Invalid("no command given", "put the command after `--`");
        ValidateEnv(options.Env);
        if (options.Timeout is { } t && t <= TimeSpan.Zero) throw MicroagentException.Invalid("--timeout must be positive");
        var store = Store(name);
        var config = EnsureRunning(store);
        bool streaming = stdout is not null || stderr is not null;
        var request = new ExecRequest
        {
            Argv = [.. options.Command],
            Env = [.. config.ImageEnv, .. config.Env, .. options.Env],
            Cwd = options.Cwd ?? (string.IsNullOrEmpty(config.ImageWorkingDir) ? null : config.ImageWorkingDir),
            User = options.User ?? (string.IsNullOrEmpty(config.ImageUser) ? null : config.ImageUser),
            TimeoutMs = options.Timeout is { } to ? (long)to.TotalMilliseconds : null,
            MaxOutputBytes = options.MaxOutputBytes ?? (streaming ? null : Runner.SingleModeOutputCap),
            Mode = streaming ? ExecModes.Stream : ExecModes.Single,
        };
        try
        {
            var result = await Agent(store).ExecAsync(request, options.Stdin, stdout, stderr, ct).ConfigureAwait(false);
            return WorkspaceExecResult.From(result);
        }
        catch (MicroagentException e) when (e is not WorkspaceStateException)
        {
            ThrowIfNoLongerRunning(store, e);
            throw;
        }
    }

    /// <summary>Copies a host file, directory tree or symlink into a running workspace (modes kept; like <c>cp -a</c>).</summary>
    public async Task<CopyResult> CopyToAsync(string name, string hostPath, string guestPath, CancellationToken ct = default)
    {
        var store = Store(name);
        var config = EnsureRunning(store);
        if (!File.Exists(hostPath) && !Directory.Exists(hostPath) && new FileInfo(hostPath).LinkTarget is null)
            throw MicroagentException.NotFound($"no such file or directory: {hostPath}");
        if (string.IsNullOrEmpty(guestPath) || guestPath.Contains('\0')) throw MicroagentException.Invalid("the guest path is empty or contains NUL");
        string tmp = TempFile(store);
        try
        {
            (int entries, long bytes) = (0, 0);
            await using (var archive = new FileStream(tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose))
            {
                (entries, bytes) = WorkspaceCopy.WriteArchive(hostPath, archive);
                archive.Position = 0;
                string baseName = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(hostPath)));
                var stderr = new Tools.CappedBuffer();
                var result = await Agent(store).ExecAsync(new ExecRequest
                {
                    Argv = ["/bin/sh", "-c", WorkspaceCopy.ReceiveScript, "sh", guestPath, baseName],
                    Env = [.. config.ImageEnv],
                    Mode = ExecModes.Stream,
                }, archive, Stream.Null, stderr, ct).ConfigureAwait(false);
                if (result.Status != ExecStatuses.Exited || result.ExitCode != 0)
                    throw new WorkspaceCopyException($"copy into {store.Name}:{guestPath} failed: {stderr.Text().Trim()}",
                        "the guest image needs a `tar` that reads a pax archive (busybox and GNU tar do)");
            }
            return new CopyResult(hostPath, $"{store.Name}:{guestPath}", entries, bytes);
        }
        finally { File.Delete(tmp); }
    }

    /// <summary>Copies a file, directory tree or symlink out of a running workspace (modes kept).</summary>
    public async Task<CopyResult> CopyFromAsync(string name, string guestPath, string hostPath, CancellationToken ct = default)
    {
        var store = Store(name);
        var config = EnsureRunning(store);
        if (string.IsNullOrEmpty(guestPath) || guestPath.Contains('\0')) throw MicroagentException.Invalid("the guest path is empty or contains NUL");
        string tmp = TempFile(store);
        await using var archive = new FileStream(tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        var stderr = new Tools.CappedBuffer();
        var result = await Agent(store).ExecAsync(new ExecRequest
        {
            Argv = ["/bin/sh", "-c", WorkspaceCopy.SendScript, "sh", guestPath],
            Env = [.. config.ImageEnv],
            Mode = ExecModes.Stream,
        }, null, archive, stderr, ct).ConfigureAwait(false);
        if (result.Status != ExecStatuses.Exited || result.ExitCode != 0)
            throw new WorkspaceCopyException($"copy from {store.Name}:{guestPath} failed: {stderr.Text().Trim()}");
        archive.Position = 0;
        string trimmed = guestPath.TrimEnd('/');
        string rootName = trimmed.Length == 0 ? "/" : trimmed[(trimmed.LastIndexOf('/') + 1)..];
        var (target, entries, bytes) = WorkspaceCopy.ExtractArchive(archive, rootName, hostPath);
        return new CopyResult($"{store.Name}:{guestPath}", target, entries, bytes);
    }

    private string TempFile(WorkspaceStore store)
    {
        StatePaths.EnsureDirectory(Paths.Tmp);
        return Path.Combine(Paths.Tmp, $"cp-{store.Name}-{Environment.ProcessId}-{Guid.NewGuid():N}.tar");
    }

    private static AgentClient Agent(WorkspaceStore store) =>
        new(ct => HybridVsock.ConnectAsync(store.HybridSocketPath, ProtocolInfo.AgentPort, ct));

    /// <summary>The config of a running workspace; otherwise a <c>conflict</c> naming its state (reconciled first).</summary>
    private WorkspaceConfig EnsureRunning(WorkspaceStore store)
    {
        var config = ReadConfigOrThrow(store);
        var state = store.ReadState();
        if (state.State == WorkspaceState.Running && ProcessTable.IsAlive(state.SupervisorPid, state.SupervisorStartTime)) return config;
        state = TryReconcile(store);
        if (state.State == WorkspaceState.Running) return config;
        throw new WorkspaceStateException(store.Name, state.State,
            $"workspace '{store.Name}' is {state.State.WireName()}{(state.Detail is { } d ? $" ({d})" : "")}",
            state.State is WorkspaceState.Starting ? $"wait for `microagent start {store.Name}` to finish" : $"start it: `microagent start {store.Name}`");
    }

    private void ThrowIfNoLongerRunning(WorkspaceStore store, MicroagentException cause)
    {
        var state = TryReconcile(store);
        if (state.State != WorkspaceState.Running)
            throw new WorkspaceStateException(store.Name, state.State,
                $"workspace '{store.Name}' stopped during the command: {state.State.WireName()}{(state.Detail is { } d ? $" ({d})" : "")}",
                $"see `microagent logs {store.Name}`; original error: {cause.Message}");
    }

    // ---- halt / kill / delete ----------------------------------------------------------------------------

    /// <summary>
    /// Gracefully powers the guest off (keeping the disk): <c>halted</c>. A guest that does not power off within
    /// <paramref name="window"/> (default 20 s) is killed and the workspace becomes <c>failed</c>. Not running: no-op.
    /// </summary>
    public async Task<WorkspaceStatus> HaltAsync(string name, TimeSpan? window = null, CancellationToken ct = default)
    {
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        ReadConfigOrThrow(store);
        var state = Reconcile(store);
        if (!state.State.IsActive()) return Status(store);
        var w = window ?? WorkspaceSupervisor.DefaultHaltWindow;
        await StopSupervisorAsync(store, state, "halt", w, ct).ConfigureAwait(false);
        return Status(store);
    }

    /// <summary>Force-stops the VM (no guest shutdown): <c>stopped</c>. Not running: no-op.</summary>
    public async Task<WorkspaceStatus> KillAsync(string name, CancellationToken ct = default)
    {
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        ReadConfigOrThrow(store);
        var state = Reconcile(store);
        if (state.State.IsActive()) await StopSupervisorAsync(store, state, "kill", TimeSpan.Zero, ct).ConfigureAwait(false);
        return Status(store);
    }

    private static async Task StopSupervisorAsync(WorkspaceStore store, WorkspaceStateRecord state, string how, TimeSpan window, CancellationToken ct)
    {
        int? pid = state.SupervisorPid;
        long? start = state.SupervisorStartTime;
        bool asked = false;
        try
        {
            var response = await ControlAsync(store, new ControlRequest { Type = how == "kill" ? ControlVerb.Kill : ControlVerb.Halt, TimeoutMs = (long)window.TotalMilliseconds }, ct).ConfigureAwait(false);
            asked = response.Ok;
        }
        catch (Exception e) when (e is MicroagentException or IOException or SocketException) { }
        if (asked && pid is { } p && await ProcessTable.WaitForExitAsync(p, start, window + TimeSpan.FromSeconds(15), ct).ConfigureAwait(false))
            return;
        // The supervisor did not answer or did not finish: stop it and its VM by signal.
        if (pid is { } sp && ProcessTable.IsAlive(sp, start))
        {
            ProcessTable.Kill(sp);
            await ProcessTable.WaitForExitAsync(sp, start, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        }
        KillStrayQemu(store);
        foreach (string f in store.RuntimeFiles().ToList()) File.Delete(f);
        if (store.ReadState().State.IsActive())
            ForceState(store, how == "kill" ? WorkspaceState.Stopped : WorkspaceState.Failed,
                how == "kill" ? "killed (the supervisor did not respond and was killed)" : "the supervisor did not complete the halt and was killed");
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
        bool stopped = false;
        if (store.Exists)
        {
            var state = Reconcile(store);
            if (state.State.IsActive())
            {
                if (!options.Force && !options.StopRunning)
                    throw new WorkspaceStateException(store.Name, state.State, $"workspace '{store.Name}' is {state.State.WireName()}",
                        $"`microagent delete {store.Name} --yes` halts it first; --force kills it");
                await StopSupervisorAsync(store, state, options.Force ? "kill" : "halt", WorkspaceSupervisor.DefaultHaltWindow, ct).ConfigureAwait(false);
                stopped = true;
            }
        }
        KillStrayQemu(store);
        TryDeleteDir(store.Dir);
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
        ReadConfigOrThrow(store);
        TryReconcile(store);
        return await WithMediationAsync(store, Status(store), ct).ConfigureAwait(false);
    }

    // ---- mediation -------------------------------------------------------------------------------------

    /// <summary>
    /// Severs the workspace's mediation channel (the quarantine hook): the supervisor closes every relayed connection and stops
    /// accepting, so no byte crosses and new guest connections are refused until the next start. Not running or no channel:
    /// <see cref="WorkspaceStateException"/> / <see cref="WorkspaceSpecException"/>.
    /// </summary>
    public async Task<MediationReadiness> SeverMediationAsync(string name, CancellationToken ct = default)
    {
        var store = Store(name);
        ReadConfigOrThrow(store);
        var state = Reconcile(store);
        if (state.Boot?.Mediation is not { Enabled: true } || !state.State.IsActive())
        {
            if (!state.State.IsActive())
                throw new WorkspaceStateException(store.Name, state.State, $"workspace '{store.Name}' is {state.State.WireName()}: there is no channel to sever", "start it first");
            throw new WorkspaceSpecException($"workspace '{store.Name}' has no mediation channel on this boot", "create or start it with --mediation PORT=HOST:PORT");
        }
        var response = await ControlAsync(store, new ControlRequest { Type = ControlVerb.SeverMediation }, ct).ConfigureAwait(false);
        if (!response.Ok || response.Mediation is null)
            throw MicroagentException.Transient($"the supervisor did not sever the mediation channel: {response.Error ?? "no answer"}");
        return response.Mediation;
    }

    /// <summary>Adds the mediation channel and, for a running workspace, the supervisor's probe of its target.</summary>
    private static async Task<WorkspaceStatus> WithMediationAsync(WorkspaceStore store, WorkspaceStatus status, CancellationToken ct)
    {
        // Running: this boot's channel (start may override it); otherwise the stored one that the next start uses.
        var mediation = status.State.IsActive() && status.Boot is not null ? status.Boot.Mediation : status.Config.Mediation;
        if (mediation is not { Enabled: true }) return status with { Mediation = mediation };
        MediationReadiness ready;
        if (status.State != WorkspaceState.Running)
            ready = MediationReadiness.NotRunning(mediation, status.State.WireName());
        else
        {
            try
            {
                var response = await ControlAsync(store, new ControlRequest { Type = ControlVerb.MediationStatus }, ct).ConfigureAwait(false);
                ready = response.Mediation ?? new MediationReadiness(false, $"mediation port {mediation.Port} -> {mediation.Target}: the supervisor reports no channel",
                    mediation.Required ? MediationReadiness.UnreachableError : null, mediation.Port, mediation.Target, mediation.Required, mediation.FailClosed);
            }
            catch (Exception e) when (e is MicroagentException or IOException or SocketException)
            {
                ready = new MediationReadiness(false, $"mediation port {mediation.Port} -> {mediation.Target}: the supervisor does not answer ({e.Message})",
                    mediation.Required ? MediationReadiness.UnreachableError : null, mediation.Port, mediation.Target, mediation.Required, mediation.FailClosed);
            }
        }
        return status with { Mediation = mediation, MediationReady = ready };
    }

    private static void ValidateMediation(MediationConfig? mediation, IReadOnlyList<VsockMapping> vsock)
    {
        if (mediation is not { Enabled: true }) return;
        _ = mediation.ToMapping();
        if (vsock.Any(v => v.GuestPort == mediation.Port))
            throw new WorkspaceSpecException($"vsock port {mediation.Port} is both a --vsock mapping and the mediation port", "use different guest ports");
    }

    /// <summary>Every workspace, by name.</summary>
    public Task<IReadOnlyList<WorkspaceStatus>> ListAsync(CancellationToken ct = default)
    {
        var list = new List<WorkspaceStatus>();
        if (Directory.Exists(Paths.Workspaces))
        {
            foreach (string dir in Directory.EnumerateDirectories(Paths.Workspaces).Order(StringComparer.Ordinal))
            {
                ct.ThrowIfCancellationRequested();
                WorkspaceStore store;
                try { store = new WorkspaceStore(Paths, Path.GetFileName(dir)); }
                catch (WorkspaceSpecException) { continue; }
                if (!store.Exists) continue;
                try
                {
                    TryReconcile(store);
                    list.Add(Status(store));
                }
                catch (WorkspaceNotFoundException) { } // deleted meanwhile
            }
        }
        return Task.FromResult<IReadOnlyList<WorkspaceStatus>>(list);
    }

    /// <summary>The workspace's lifecycle events, oldest first; with <paramref name="follow"/>, then new ones as they happen until the workspace reaches a terminal state or <paramref name="ct"/> is cancelled.</summary>
    public async IAsyncEnumerable<WorkspaceEvent> ReadEventsAsync(string name, bool follow = false, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var store = Store(name);
        ReadConfigOrThrow(store);
        long offset = 0;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var batch = store.ReadEvents(offset, out offset);
            foreach (var e in batch) yield return e;
            if (!follow) yield break;
            if (batch.Count == 0 && !File.Exists(store.StatePath)) yield break;
            if (batch.Count == 0 && TryReconcile(store).State.IsTerminal()) yield break;
            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Copies the guest serial console log to <paramref name="output"/>; with <paramref name="follow"/>, keeps copying until the workspace reaches a terminal state.</summary>
    public async Task ReadLogAsync(string name, Stream output, bool follow = false, CancellationToken ct = default)
    {
        var store = Store(name);
        ReadConfigOrThrow(store);
        long offset = 0;
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int copied = 0;
            if (File.Exists(store.SerialLogPath))
            {
                await using var fs = new FileStream(store.SerialLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (fs.Length < offset) offset = 0; // a new boot truncated it
                fs.Seek(offset, SeekOrigin.Begin);
                int n;
                while ((n = await fs.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    offset += n;
                    copied += n;
                }
                await output.FlushAsync(ct).ConfigureAwait(false);
            }
            if (!follow) return;
            if (copied == 0 && (!File.Exists(store.StatePath) || TryReconcile(store).State.IsTerminal())) return;
            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The structured result of the workload (<see cref="WorkspaceSpec.Exec"/>) of the last start.</summary>
    public Task<WorkloadResult> GetResultAsync(string name, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        var store = Store(name);
        var config = ReadConfigOrThrow(store);
        if (store.ReadResult() is { } result) return Task.FromResult(result);
        if (config.Exec is null)
            throw MicroagentException.NotFound($"workspace '{store.Name}' has no workload", "create it with --exec CMD to get a structured result");
        var state = TryReconcile(store);
        throw state.State.IsActive()
            ? new WorkspaceStateException(store.Name, state.State, $"the workload of '{store.Name}' is still running", $"`microagent wait {store.Name}` first")
            : MicroagentException.NotFound($"workspace '{store.Name}' has no workload result yet ({state.State.WireName()})", $"`microagent start {store.Name}` runs it");
    }

    /// <summary>Waits until the workspace is halted, stopped, failed (or was never started); <see cref="WorkspaceTimeoutException"/> after <paramref name="timeout"/>.</summary>
    public async Task<WorkspaceStatus> WaitAsync(string name, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        var store = Store(name);
        ReadConfigOrThrow(store);
        var clock = Stopwatch.StartNew();
        while (!TryReconcile(store).State.IsTerminal())
        {
            if (timeout is { } t && clock.Elapsed > t)
                throw new WorkspaceTimeoutException($"workspace '{store.Name}' is still {store.ReadState().State.WireName()} after {t.TotalSeconds:0.#} s",
                    "wait longer, or halt it");
            await Task.Delay(200, ct).ConfigureAwait(false);
        }
        return Status(store);
    }

    // ---- gc / reconcile ---------------------------------------------------------------------------------

    /// <summary>Reaps what is orphaned: state of workspaces whose supervisor died, stray QEMU processes, stale sockets, directories of killed one-shot runs.</summary>
    public async Task<GcReport> GcAsync(CancellationToken ct = default)
    {
        var reconciled = new List<string>();
        var killed = new List<int>();
        var sockets = new List<string>();
        var runs = new List<string>();
        if (!Directory.Exists(Paths.Workspaces)) return new GcReport(reconciled, killed, sockets, runs);
        foreach (string dir in Directory.EnumerateDirectories(Paths.Workspaces))
        {
            ct.ThrowIfCancellationRequested();
            WorkspaceStore store;
            try { store = new WorkspaceStore(Paths, Path.GetFileName(dir)); }
            catch (WorkspaceSpecException) { continue; }
            using var held = FileLock.TryAcquire(store.LockPath);
            if (held is null) continue; // another command is working on it
            if (!store.Exists)
            {
                // A run killed before it wrote its config, or leftovers: only when nothing has touched it for a minute.
                if (Directory.GetLastWriteTimeUtc(dir) < DateTime.UtcNow.AddMinutes(-1) && !HasLiveQemu(store))
                {
                    TryDeleteDir(dir);
                    runs.Add(store.Name);
                }
                continue;
            }
            var before = store.ReadState();
            var after = Reconcile(store);
            if (before.State != after.State) reconciled.Add(store.Name);
            if (!after.State.IsActive())
            {
                foreach (string f in store.RuntimeFiles().ToList())
                {
                    File.Delete(f);
                    sockets.Add(f);
                }
                if (store.Name.StartsWith("run-", StringComparison.Ordinal) && ReadBootOrNull(store)?.Ephemeral == true)
                {
                    TryDeleteDir(dir);
                    runs.Add(store.Name);
                }
            }
        }
        // QEMU under our workspaces whose workspace does not own it (supervisor gone).
        string prefix = Paths.Workspaces + "/";
        foreach (int pid in ProcessTable.AllPids())
        {
            string cmd = ProcessTable.CommandLine(pid);
            if (!cmd.Contains("qemu-system", StringComparison.Ordinal)) continue;
            int at = cmd.IndexOf(prefix, StringComparison.Ordinal);
            if (at < 0) continue;
            string rest = cmd[(at + prefix.Length)..];
            string name = rest[..Math.Max(0, rest.IndexOf('/'))];
            bool owned = false;
            try
            {
                var store = new WorkspaceStore(Paths, name);
                if (store.Exists && store.ReadState() is { } s && s.State.IsActive() && s.QemuPid == pid
                    && ProcessTable.IsAlive(s.SupervisorPid, s.SupervisorStartTime)) owned = true;
                // A workspace being started (lock held) may not have recorded its QEMU pid yet.
                if (!owned && FileLock.TryAcquire(store.LockPath) is { } l) l.Dispose(); else owned = true;
            }
            catch (MicroagentException) { }
            if (owned) continue;
            ProcessTable.Kill(pid);
            killed.Add(pid);
        }
        // Lock files are never unlinked here: a process that already opened one would lock a deleted inode while
        // a newcomer locks a fresh file, and two holders would exist. They are empty files; leaving them is harmless.
        await Task.CompletedTask.ConfigureAwait(false);
        return new GcReport(reconciled, killed, sockets, runs);
    }

    private static BootRecord? ReadBootOrNull(WorkspaceStore store)
    {
        try { return File.Exists(store.BootPath) ? store.ReadBoot() : null; }
        catch (MicroagentException) { return null; }
    }

    /// <summary>Reconciles only if the lock is free right now (readers never wait); returns the state either way.</summary>
    private static WorkspaceStateRecord TryReconcile(WorkspaceStore store)
    {
        var state = store.ReadState();
        if (!state.State.IsActive() || ProcessTable.IsAlive(state.SupervisorPid, state.SupervisorStartTime)) return state;
        using var held = FileLock.TryAcquire(store.LockPath);
        return held is null ? state : Reconcile(store);
    }

    /// <summary>Caller holds the lock. An active state whose supervisor is gone becomes failed (or stopped when it was stopping), with the reason.</summary>
    private static WorkspaceStateRecord Reconcile(WorkspaceStore store)
    {
        var state = store.ReadState();
        if (!state.State.IsActive() || ProcessTable.IsAlive(state.SupervisorPid, state.SupervisorStartTime)) return state;
        bool qemuKilled = KillStrayQemu(store);
        foreach (string f in store.RuntimeFiles().ToList()) File.Delete(f);
        string who = state.SupervisorPid is { } p ? $"pid {p}" : "not recorded";
        string detail = $"the supervisor ({who}) died unexpectedly{(qemuKilled ? "; its QEMU was killed" : "; its VM is gone")}";
        return state.State == WorkspaceState.Stopping
            ? ForceState(store, WorkspaceState.Stopped, detail + " while stopping")
            : ForceState(store, WorkspaceState.Failed, detail);
    }

    private static WorkspaceStateRecord ForceState(WorkspaceStore store, WorkspaceState to, string detail) => store.Settle(to, detail);

    /// <summary>Kills QEMU processes whose command line names this workspace's directory; true when one was found.</summary>
    private static bool KillStrayQemu(WorkspaceStore store)
    {
        bool found = false;
        foreach (int pid in QemuPidsOf(store))
        {
            ProcessTable.Kill(pid);
            found = true;
        }
        return found;
    }

    private static bool HasLiveQemu(WorkspaceStore store) => QemuPidsOf(store).Any();

    private static IEnumerable<int> QemuPidsOf(WorkspaceStore store)
    {
        string marker = store.Dir + "/";
        foreach (int pid in ProcessTable.AllPids())
        {
            string cmd = ProcessTable.CommandLine(pid);
            if (cmd.Contains("qemu-system", StringComparison.Ordinal) && cmd.Contains(marker, StringComparison.Ordinal)) yield return pid;
        }
    }

    private static Task<ControlResponse> ControlAsync(WorkspaceStore store, ControlRequest request, CancellationToken ct) =>
        ControlClient.SendAsync(store.ControlSocketPath, request, ct);

    // ---- run -------------------------------------------------------------------------------------------

    /// <summary>
    /// A one-shot run on the workspace verbs: create <c>run-XXXX</c>, start it (owned by this process: if this process dies
    /// the supervisor kills the VM and removes the workspace), exec, then delete (or halt and keep with <see cref="RunOptions.Keep"/>).
    /// </summary>
    public async Task<RunResult> RunAsync(RunOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        Runner.Validate(options);
        var total = Stopwatch.StartNew();
        StatePaths.EnsureDirectory(Paths.Root);
        string id = "run-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant();
        var store = Store(id);
        bool keep = false;
        // The command is resolved against the image before anything boots: no command and no Entrypoint/Cmd is invalid.
        var image = await new ImageStore(Paths).EnsureBaselineAsync(options.Image, options.Progress, ct).ConfigureAwait(false);
        var request = Runner.BuildRequest(options, image.Config);
        var exec = new ExecOptions
        {
            Command = request.Argv, Env = options.Env, Cwd = options.Cwd, User = options.User,
            Timeout = options.Timeout, MaxOutputBytes = request.MaxOutputBytes, Stdin = options.Stdin,
        };
        try
        {
            await CreateAsync(new WorkspaceSpec { Name = id, Image = options.Image, MemoryMiB = options.MemoryMiB, Cpus = options.Cpus }, ct, options.Progress)
                .ConfigureAwait(false);
            long prepareMs = total.ElapsedMilliseconds;
            var phase = Stopwatch.StartNew();
            var status = await StartAsync(id, new StartOptions { OwnerPid = Environment.ProcessId, Ephemeral = !options.Keep }, ct).ConfigureAwait(false);
            long bootMs = phase.ElapsedMilliseconds;

            phase.Restart();
            WorkspaceExecResult result = options.Stdout is not null || options.Stderr is not null
                ? await ExecStreamAsync(id, exec, options.Stdout ?? Stream.Null, options.Stderr ?? Stream.Null, ct).ConfigureAwait(false)
                : await ExecAsync(id, exec, ct).ConfigureAwait(false);
            long execMs = phase.ElapsedMilliseconds;

            phase.Restart();
            if (options.Keep) await HaltAsync(id, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
            else await DeleteAsync(id, new DeleteOptions { Force = true }, ct).ConfigureAwait(false);
            keep = options.Keep;
            long teardownMs = phase.ElapsedMilliseconds;
            var timings = new RunTimings(prepareMs, bootMs, execMs, teardownMs, total.ElapsedMilliseconds);
            return new RunResult(id, result.Status, result.ExitCode, result.Signal, result.Stdout, result.Stderr,
                result.StdoutTruncated, result.StderrTruncated, result.Error, status.Boot?.Accelerator ?? "", timings, keep ? store.Dir : null);
        }
        finally
        {
            if (!keep)
            {
                await DeleteAsync(id, new DeleteOptions { Force = true }, CancellationToken.None).ConfigureAwait(false);
                // A random one-shot name is never locked by anyone else: its lock file goes with it.
                using (var l = FileLock.TryAcquire(store.LockPath)) if (l is not null) File.Delete(store.LockPath);
            }
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------------

    private WorkspaceStore Store(string name) => new(Paths, name);

    private static WorkspaceConfig ReadConfigOrThrow(WorkspaceStore store)
    {
        if (!store.Exists) throw new WorkspaceNotFoundException(store.Name);
        return store.ReadConfig();
    }

    private WorkspaceStatus Status(WorkspaceStore store)
    {
        var config = store.ReadConfig();
        var state = store.ReadState();
        long disk = 0;
        try { disk = new FileInfo(store.DiskPath).Length; } catch (IOException) { }
        return new WorkspaceStatus
        {
            Name = store.Name, State = state.State, Previous = state.Previous, Detail = state.Detail, Since = state.Since,
            GuestReady = state.GuestReady, ExecReady = state.ExecReady && state.State == WorkspaceState.Running,
            SetupCompleted = state.SetupCompleted, Pids = new WorkspacePids(state.SupervisorPid, state.QemuPid),
            Config = config, Boot = state.Boot, DiskUsageBytes = disk,
            Kernel = state.Boot?.KernelSha256 is { } k ? new WorkspaceHash(state.Boot.KernelRelease, k) : null,
            Rootfs = new WorkspaceHash(config.BaselinePath, config.ImageDigest),
            LastActivity = state.LastActivity, Directory = store.Dir,
        };
    }

    private async Task<FileLock> LockAsync(WorkspaceStore store, CancellationToken ct) =>
        await FileLock.AcquireAsync(store.LockPath, _options.LockWait, ct).ConfigureAwait(false) ?? throw new WorkspaceBusyException(store.Name);

    private static void ValidateSizes(int memory, int cpus, int ttl)
    {
        if (memory is < 128 or > 65536) throw new WorkspaceSpecException($"--memory {memory} is out of range", "use 128..65536 MiB");
        if (cpus is < 1 or > 64) throw new WorkspaceSpecException($"--cpus {cpus} is out of range", "use 1..64");
        if (ttl < 0) throw new WorkspaceSpecException("--ttl must be 0 (permanent) or a number of seconds");
    }

    private static void ValidateEnv(IEnumerable<string> env)
    {
        foreach (string e in env)
            if (!e.Contains('=') || e.StartsWith('=') || e.Contains('\0'))
                throw new WorkspaceSpecException($"environment entry '{e}' is not KEY=VALUE");
    }

    private static void TryDeleteDir(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
