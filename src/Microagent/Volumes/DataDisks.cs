using Microagent.Agent;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Protocol;
using Microagent.Vmm;
using Microagent.Workspaces;

namespace Microagent.Volumes;

/// <summary>A data disk as stored in a workspace's config: the request resolved to the host file QEMU opens.</summary>
public sealed record AttachedDisk
{
    /// <summary>Label in the workspace.</summary>
    public required string Name { get; init; }
    /// <summary>image, bundle or volume (<see cref="DiskKinds"/>).</summary>
    public required string Kind { get; init; }
    /// <summary>The source as given: host path or volume name.</summary>
    public required string Source { get; init; }
    /// <summary>Guest mount point.</summary>
    public required string Target { get; init; }
    /// <summary>Attached and mounted read-only.</summary>
    public bool ReadOnly { get; init; }
    /// <summary>The file QEMU opens: the image, the volume's file, a cached bundle image, or a bundle's per-workspace overlay.</summary>
    public required string Path { get; init; }
    /// <summary>raw or qcow2 (a read-write bundle's overlay).</summary>
    public required string Format { get; init; }
    /// <summary>virtio-blk serial the guest finds the disk by.</summary>
    public required string Serial { get; init; }
    /// <summary>A bundle's sha256 (its cached image is <c>bundles/&lt;sha256&gt;.ext4</c>).</summary>
    public string? Sha256 { get; init; }
    /// <summary>The host file shared with other workspaces, guarded by a <see cref="DiskLock"/>; null when the disk is this workspace's own.</summary>
    public string? SharedFile { get; init; }
}

/// <summary>
/// Data disks of workspaces (docs/ARCHITECTURE.md "Images and disks"): resolves requests at create, checks and locks shared
/// files at start, and mounts every disk in the guest over the agent protocol once it said hello (the same call re-applies
/// them after a restore). Each rule lives here once, for the CLI, MCP and library callers.
/// </summary>
internal static class DataDisks
{
    /// <summary>Subdirectory of a workspace holding its bundle overlays.</summary>
    public const string OverlayDir = "disks";

    /// <summary>Resolves <paramref name="requests"/> for workspace directory <paramref name="workspaceDir"/>; builds bundle images and overlays.</summary>
    public static async Task<IReadOnlyList<AttachedDisk>> AttachAsync(StatePaths paths, string workspaceDir, IReadOnlyList<DiskRequest> requests,
        IProgress<string>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(requests);
        DiskRequest.CheckList(requests);
        var disks = new List<AttachedDisk>();
        for (int i = 0; i < requests.Count; i++)
        {
            var r = requests[i];
            string serial = SerialOf(i, r.Name);
            switch (r.Kind)
            {
                case DiskKinds.Volume:
                {
                    string file = new VolumeStore(paths).RequireImage(r.Source);
                    disks.Add(Make(r, file, "raw", serial) with { SharedFile = file });
                    break;
                }
                case DiskKinds.Image:
                {
                    string file = CheckImage(r.Source);
                    disks.Add(Make(r, file, "raw", serial) with { SharedFile = file });
                    break;
                }
                case DiskKinds.Bundle:
                {
                    var (image, sha) = await new BundleCache(paths).EnsureAsync(HostPath(r.Source), progress, ct).ConfigureAwait(false);
                    if (r.ReadOnly) { disks.Add(Make(r, image, "raw", serial) with { Sha256 = sha }); break; }
                    string overlay = System.IO.Path.Combine(workspaceDir, OverlayDir, r.Name + ".qcow2");
                    await DiskOverlay.CreateAsync(image, overlay, ct).ConfigureAwait(false);
                    disks.Add(Make(r, overlay, "qcow2", serial) with { Sha256 = sha });
                    break;
                }
                default:
                    throw new WorkspaceSpecException($"unknown data disk kind '{r.Kind}'", "use image, bundle or volume") { Field = "volume" };
            }
        }
        return disks;
    }

    /// <summary>The planned block devices (vdb onwards) of <paramref name="requests"/>, from local state only (<c>--dry-run</c>).</summary>
    public static IReadOnlyList<PlannedDisk> Plan(StatePaths paths, IReadOnlyList<DiskRequest> requests, List<string> notes)
    {
        ArgumentNullException.ThrowIfNull(requests);
        DiskRequest.CheckList(requests);
        var planned = new List<PlannedDisk>();
        for (int i = 0; i < requests.Count; i++)
        {
            var r = requests[i];
            string device = "vd" + (char)('b' + i);
            string mode = r.ReadOnly ? "ro" : "rw";
            switch (r.Kind)
            {
                case DiskKinds.Volume:
                    string file = new VolumeStore(paths).ImagePath(r.Source);
                    if (!File.Exists(file)) notes.Add($"volume '{r.Source}' does not exist: it would fail (run `microagent volume create {r.Source}`)");
                    planned.Add(new PlannedDisk(device, file, mode, null) { Target = r.Target, Kind = r.Kind, Source = r.Source });
                    break;
                case DiskKinds.Image:
                    planned.Add(new PlannedDisk(device, CheckImage(r.Source), mode, null) { Target = r.Target, Kind = r.Kind, Source = r.Source });
                    break;
                default:
                    string bundle = HostPath(r.Source);
                    if (!File.Exists(bundle)) throw MicroagentException.NotFound($"bundle {bundle} does not exist", "give the path of a .tar or .tar.gz file");
                    notes.Add($"bundle {r.Source} would be made into a cached ext4 image (once per content digest){(r.ReadOnly ? "" : " with a copy-on-write overlay for this workspace")}");
                    planned.Add(new PlannedDisk(device, r.ReadOnly ? "(cached image of the bundle)" : $"{OverlayDir}/{r.Name}.qcow2", mode, r.ReadOnly ? null : "(cached image of the bundle)")
                        { Target = r.Target, Kind = r.Kind, Source = r.Source });
                    break;
            }
        }
        return planned;
    }

    /// <summary>
    /// Checks that every disk's file is there and no running workspace holds a shared file in a conflicting mode; takes the locks
    /// and returns them (the supervisor holds them for the VM's life; <c>start</c> only probes). <c>conflict</c> names the holder.
    /// </summary>
    public static IReadOnlyList<IDisposable> Lock(StatePaths paths, string workspace, IReadOnlyList<AttachedDisk> disks)
    {
        ArgumentNullException.ThrowIfNull(disks);
        var held = new List<IDisposable>();
        try
        {
            foreach (var d in disks)
            {
                if (!File.Exists(d.Path))
                    throw MicroagentException.NotFound($"data disk '{d.Name}' of {workspace} is gone: {d.Path} does not exist",
                        d.Kind == DiskKinds.Volume ? $"recreate it with `microagent volume create {d.Source}`, or delete the workspace" : "put the file back, or delete the workspace");
                if (d.SharedFile is not { } shared) continue;
                var l = DiskLock.TryAcquire(DiskLock.PathFor(paths, shared), exclusive: !d.ReadOnly)
                    ?? throw new MicroagentException(ErrorKind.Conflict,
                        $"{Describe(d)} is attached to another running workspace{Holders(paths, workspace, shared)}; " +
                        (d.ReadOnly ? "it is attached read-write there" : "a read-write disk is attached to one running workspace at a time"),
                        "halt the other workspace first, or attach the disk read-only (:ro) in both");
                held.Add(l);
            }
            return held;
        }
        catch
        {
            foreach (var l in held) l.Dispose();
            throw;
        }
    }

    /// <summary>The QEMU devices of <paramref name="disks"/>, in order.</summary>
    public static IReadOnlyList<VmDisk> ToVm(IReadOnlyList<AttachedDisk> disks) =>
        [.. (disks ?? []).Select(d => new VmDisk(d.Path, d.Format, d.ReadOnly, d.Serial))];

    /// <summary>Asks the guest agent to mount every disk at its target (after hello, and again after a restore).</summary>
    public static async Task MountAllAsync(AgentClient agent, IReadOnlyList<AttachedDisk> disks, Action<string> log, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(agent);
        foreach (var d in disks ?? [])
        {
            try
            {
                await agent.MountAsync(new MountRequest { Serial = d.Serial, Target = d.Target, FsType = "ext4", ReadOnly = d.ReadOnly }, ct).ConfigureAwait(false);
            }
            catch (MicroagentException e)
            {
                throw new MicroagentException(e.Kind, $"cannot mount {Describe(d)} on {d.Target}: {e.Message}",
                    d.Kind == DiskKinds.Image ? "check that the file is an ext4 image (`dumpe2fs -h FILE`)" : "see the serial log (`microagent logs NAME`)", e);
            }
            log($"disk {d.Name} ({d.Kind} {d.Source}) mounted on {d.Target}{(d.ReadOnly ? " read-only" : "")}");
        }
    }

    private static string Describe(AttachedDisk d) => d.Kind switch
    {
        DiskKinds.Volume => $"volume '{d.Source}'",
        DiskKinds.Bundle => $"bundle {d.Source}",
        _ => $"image {d.Source}",
    };

    /// <summary>" (NAME, NAME)": the running workspaces whose configs attach <paramref name="shared"/>, besides <paramref name="self"/>.</summary>
    private static string Holders(StatePaths paths, string self, string shared)
    {
        if (!Directory.Exists(paths.Workspaces)) return "";
        string real = DiskLock.RealPath(shared);
        var names = new List<string>();
        foreach (string dir in Directory.EnumerateDirectories(paths.Workspaces).Order(StringComparer.Ordinal))
        {
            try
            {
                var config = WorkspaceStore.TryReadConfig(System.IO.Path.Combine(dir, "config.json"));
                if (config is null || config.Name == self) continue;
                var state = new WorkspaceStore(paths, config.Name).ReadState().State;
                if (state.IsActive() && config.Disks.Any(d => d.SharedFile is { } f && DiskLock.RealPath(f) == real)) names.Add(config.Name);
            }
            catch (Exception e) when (e is IOException or System.Text.Json.JsonException or UnauthorizedAccessException or MicroagentException) { }
        }
        return names.Count == 0 ? "" : $" ({string.Join(", ", names)})";
    }

    private static AttachedDisk Make(DiskRequest r, string path, string format, string serial) => new()
    {
        Name = r.Name, Kind = r.Kind, Source = r.Source, Target = r.Target, ReadOnly = r.ReadOnly, Path = path, Format = format, Serial = serial,
    };

    /// <summary>"ma{index}-{name}" within virtio-blk's 20 bytes, letters, digits and '-' only: unique by its index.</summary>
    private static string SerialOf(int index, string name)
    {
        string s = $"ma{index}-" + new string([.. name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')]);
        return s.Length > MountInfo.MaxSerialBytes ? s[..MountInfo.MaxSerialBytes] : s;
    }

    private static string HostPath(string source) =>
        System.IO.Path.GetFullPath(source.StartsWith("~/", StringComparison.Ordinal)
            ? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), source[2..]) : source);

    /// <summary>The real path of an ext4 image file; <c>not_found</c> / <c>invalid</c> with what it is instead.</summary>
    private static string CheckImage(string source)
    {
        string path = HostPath(source);
        if (Directory.Exists(path)) throw new WorkspaceSpecException($"'{source}' is a host directory", "host directories are not shared into a workspace") { Field = "volume" };
        if (!File.Exists(path))
            throw MicroagentException.NotFound($"disk image {path} does not exist",
                $"make one: `mke2fs -t ext4 {source} 512M` (add `-d DIR` to fill it); a bare NAME (no '/' or extension) is a named volume");
        string real = DiskLock.RealPath(path);
        return Ext4Probe.Identify(real) switch
        {
            "ext4" => real,
            "qcow2" => throw new WorkspaceSpecException($"{source} is a qcow2 image; data disks are raw ext4 images",
                $"convert it: `qemu-img convert -O raw {source} data.ext4`") { Field = "volume" },
            _ => throw new WorkspaceSpecException($"{source} is not an ext4 filesystem image",
                "make one with `mke2fs -t ext4 -d DIR FILE SIZE`, or pack a directory as a .tar.gz bundle") { Field = "volume" },
        };
    }
}
