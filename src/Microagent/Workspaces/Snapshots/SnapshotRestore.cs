using System.Security.Cryptography;
using Microagent.Errors;
using Microagent.Protocol;

namespace Microagent.Workspaces.Snapshots;

/// <summary>
/// The supervisor's restore (docs/ARCHITECTURE.md "Snapshots"): the boot a <see cref="PendingRestore"/> asks for instead of a cold
/// boot. The disk is already an overlay on the snapshot's frozen layer (the manager made it). After the guest answers: its wall
/// clock is set from the host, its kernel RNG reseeded with host entropy and, for a fork, its own hostname and a new machine-id
/// applied (and for a warm start from a template: docs/ARCHITECTURE.md "Warm start"). In-flight guest connections of the saved VM do not survive: the agent's listener keeps listening and the host's
/// first connection is retried.
/// </summary>
internal static class SnapshotRestore
{
    /// <summary>Bytes of host entropy given to a restored guest.</summary>
    public const int SeedBytes = 64;

    /// <summary>Restores <paramref name="pending"/> into a VM in <paramref name="store"/>'s directory; says what was applied through <paramref name="log"/>.</summary>
    public static async Task<WorkspaceVm> RestoreAsync(WorkspaceStore store, WorkspaceConfig config, PendingRestore pending, BootAssets assets, BootRecord boot,
        GuestConnectionCap cap, Action<string> log, CancellationToken ct)
    {
        var (m, memoryState) = Load(store.Paths, pending);
        if (m.MemoryMiB != boot.MemoryMiB || m.Cpus != boot.Cpus)
            throw new SnapshotMismatchException(store.Name, m.Tag, m.MemoryMiB != boot.MemoryMiB ? "memory" : "vCPUs",
                m.MemoryMiB != boot.MemoryMiB ? $"{m.MemoryMiB} MiB" : $"{m.Cpus}", m.MemoryMiB != boot.MemoryMiB ? $"{boot.MemoryMiB} MiB" : $"{boot.Cpus}");
        var hello = new Hello { AgentVersion = m.AgentVersion, Kernel = m.KernelRelease ?? "" };
        var vm = await WorkspaceVm.RestoreAsync(store.Dir, assets, store.DiskPath, memoryState,
            m.MemoryMiB, m.Cpus, m.BootHostname ?? config.Hostname, hello, ct, cap.Max, cap.OnRefused, boot.Ephemeral,
            pending.Template is null ? "" : Templates.TemplateStore.BootKernelArgs).ConfigureAwait(false);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            log($"restore steps: {vm.RestoreSteps}");
            // Clock, entropy and identity are independent requests (one connection each): sent at once, not one after another.
            var started = System.Diagnostics.Stopwatch.StartNew();
            bool identity = pending.Fork || pending.Template is not null;
            var clockTask = vm.SetGuestClockAsync(DateTimeOffset.UtcNow, timeout.Token);
            var reseed = vm.Agent.ReseedAsync(RandomNumberGenerator.GetBytes(SeedBytes), timeout.Token);
            var ident = identity ? vm.Agent.SetIdentityAsync(config.Hostname, NewMachineId(), timeout.Token) : Task.CompletedTask;
            await Task.WhenAll(clockTask, reseed, ident).ConfigureAwait(false);
            var clock = await clockTask.ConfigureAwait(false);
            if (identity) log($"{(pending.Fork ? "fork" : "warm start")} of {pending.Label}: hostname {config.Hostname}, new machine-id");
            log($"restored from {(pending.Template is null ? "snapshot" : "template")} {pending.Label}: {clock.Describe()}, RNG reseeded ({started.ElapsedMilliseconds} ms)");
            return vm;
        }
        catch (Exception e) when (e is MicroagentException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            await vm.DisposeAsync().ConfigureAwait(false);
            throw MicroagentException.Permanent($"the restored guest did not take the clock, entropy or identity: {e.Message}", "boot from disk: `microagent start NAME`", e);
        }
    }

    /// <summary>The manifest and memory file <paramref name="pending"/> restores: a snapshot's (in its workspace) or a warm-start template's.</summary>
    private static (SnapshotManifest Manifest, string MemoryState) Load(StatePaths paths, PendingRestore pending)
    {
        if (pending.Template is { } key)
        {
            var templates = new Templates.TemplateStore(paths);
            var t = templates.Read(key) ?? throw MicroagentException.NotFound($"template {key} is gone", "boot cold: `microagent start NAME --cold`");
            return (t.ToSnapshotManifest(), templates.MemoryPath(key));
        }
        string sourceDir = Path.GetDirectoryName(Path.GetDirectoryName(pending.SnapshotDir)!)!;
        var snapshot = new SnapshotStore(sourceDir).Get(pending.Source, pending.Tag);
        return (snapshot.Manifest, Path.Combine(snapshot.Directory, SnapshotStore.MemoryFile));
    }

    /// <summary>A fresh machine-id (machine-id(5): 32 lowercase hex digits, a v4 UUID without dashes).</summary>
    public static string NewMachineId() => Guid.NewGuid().ToString("N");
}
