using System.Globalization;
using System.Text.Json;
using Microagent.Errors;
using Microagent.Kernels;
using Microagent.Registries;
using Microagent.Tools;

using Microagent.Workspaces;

namespace Microagent.Images;

/// <summary>Tunables for baseline builds.</summary>
/// <param name="HeadroomBytes">Free space added to the content size (the guest writes into its overlay, which grows into it).</param>
/// <param name="Limits">Caps on layer content.</param>
public sealed record BaselineOptions(long HeadroomBytes = 256L << 20, LayerLimits? Limits = null);

/// <summary>How to pull.</summary>
public sealed record PullOptions
{
    /// <summary>Architecture to select from an index (default: the host's).</summary>
    public string? Architecture { get; init; }
    /// <summary>Registries reached over plain HTTP although not on loopback.</summary>
    public IReadOnlyCollection<string> InsecureRegistries { get; init; } = [];
    /// <summary>Exact baseline size in MiB (default: content + 10% + headroom).</summary>
    public long? SizeMiB { get; init; }
    /// <summary>Use a cached baseline for the name without asking the registry (what <c>run</c> does).</summary>
    public bool PreferLocal { get; init; }
}

/// <summary>One progress report of a pull or baseline build.</summary>
/// <param name="Phase">resolving, downloading, applying, building, ready.</param>
/// <param name="Message">A one-line description of the phase.</param>
/// <param name="LayersDone">Layers downloaded (downloading) or applied (applying).</param>
/// <param name="Layers">Layer count.</param>
/// <param name="BytesDone">Bytes downloaded or applied so far.</param>
/// <param name="BytesTotal">Bytes to download or apply.</param>
public sealed record ImageProgress(string Phase, string Message, int LayersDone = 0, int Layers = 0, long BytesDone = 0, long BytesTotal = 0);

/// <summary>A cached image: its baseline, the names pointing at it, and the workspace disks using it.</summary>
public sealed record ImageInfo(Baseline Baseline, IReadOnlyList<string> References, IReadOnlyList<string> UsedBy);

/// <summary>What <see cref="ImageStore.Prune"/> removed.</summary>
public sealed record PruneResult(IReadOnlyList<string> RemovedBaselines, long ReclaimedBytes, IReadOnlyList<string> KeptInUse);

/// <summary>
/// Images and their sealed ext4 baselines (docs/ARCHITECTURE.md "Decisions": root disks). Layout under <c>images/</c>:
/// <c>baselines/&lt;manifest-hex&gt;.ext4</c> + <c>.json</c> (the <see cref="Baseline"/>, written after
/// the disk, so its presence means the disk is complete) + <c>.lock</c> (serialises builders; stale
/// temps are removed under it); <c>content/</c> an OCI layout holding pulled manifests and configs
/// (and layer blobs until their baseline is built); <c>refs.json</c> the names. A baseline is keyed
/// by the digest of its platform-specific manifest, so digest + platform identify it.
/// </summary>
public sealed class ImageStore
{
    /// <summary>Environment variable naming the default image's OCI layout directory.</summary>
    public const string DefaultImageVariable = "MICROAGENT_DEFAULT_IMAGE";

    private const int ParallelDownloads = 3;
    private readonly StatePaths _paths;
    private readonly BaselineOptions _options;
    private readonly Func<IEnumerable<string>> _workspaceDisks;

    /// <summary>Uses the images directory of <paramref name="paths"/>.</summary>
    public ImageStore(StatePaths paths) : this(paths, new BaselineOptions()) { }

    /// <summary>Uses the images directory of <paramref name="paths"/> with <paramref name="options"/>.</summary>
    public ImageStore(StatePaths paths, BaselineOptions options) : this(paths, options, () => WorkspaceLayout.AllDisks(paths)) { }

    /// <summary>
    /// As above; <paramref name="workspaceDisks"/> lists every disk that may be backed by a baseline (the workspaces side owns
    /// where they live: <see cref="WorkspaceLayout.AllDisks"/> by default), so that none in use is removed.
    /// </summary>
    internal ImageStore(StatePaths paths, BaselineOptions options, Func<IEnumerable<string>> workspaceDisks)
    {
        _paths = paths;
        _options = options;
        _workspaceDisks = workspaceDisks;
    }

    /// <summary>Where baselines live.</summary>
    public string BaselinesDir => Path.Combine(_paths.Images, "baselines");

    /// <summary>OCI layout holding pulled manifests, configs and in-flight layers.</summary>
    public string ContentDir => Path.Combine(_paths.Images, "content");

    private string RefsPath => Path.Combine(_paths.Images, "refs.json");

    /// <summary>
    /// The baseline for <paramref name="imageRef"/> as <c>run</c> wants it: a cached baseline for the
    /// name is used as is; otherwise it is pulled or built (null or <c>default</c>: the embedded
    /// default image; <c>oci:PATH[:TAG]</c>; <c>docker-archive:PATH</c>; else a registry reference).
    /// </summary>
    public Task<Baseline> EnsureBaselineAsync(string? imageRef, IProgress<string>? progress = null, CancellationToken ct = default)
        => PullAsync(imageRef, new PullOptions { PreferLocal = true, Architecture = Platforms.DefaultArchitecture }, PhaseLines(progress), ct);

    /// <summary>Resolves <paramref name="imageRef"/> and makes sure its baseline is built (pulling what is missing).</summary>
    public async Task<Baseline> PullAsync(string? imageRef, PullOptions options, IProgress<ImageProgress>? progress = null, CancellationToken ct = default)
    {
        var source = ImageSource.Parse(imageRef);
        string arch = Platforms.Normalize(options.Architecture);
        string platform = "linux/" + arch;
        StatePaths.EnsureDirectory(_paths.Images);
        StatePaths.EnsureDirectory(BaselinesDir);

        if (options.PreferLocal && source is not ImageSource.Layout && FindRef(source.Display, platform) is { } known
            && TryLoad(known.ManifestDigest[7..], source.Display) is { } local)
            return local;

        switch (source)
        {
            case ImageSource.Layout l:
            {
                var layout = OciLayout.Open(l.Path);
                OciImage image = layout.Resolve(l.Tag, arch);
                return await EnsureBuiltAsync(image, source.Display, platform, options, progress,
                    (d, _) => Task.FromResult(layout.OpenBlob(d)), ct).ConfigureAwait(false);
            }
            case ImageSource.DockerArchive a:
            {
                progress?.Report(new ImageProgress("resolving", $"importing {a.Path}"));
                var content = Content();
                var manifest = await Task.Run(() => DockerArchive.Import(a.Path, content, _paths.Tmp, ct), ct).ConfigureAwait(false);
                OciImage image = content.ReadImage(manifest, arch);
                return await EnsureBuiltAsync(image, source.Display, platform, options, progress,
                    (d, _) => Task.FromResult(content.OpenBlob(d)), ct).ConfigureAwait(false);
            }
            case ImageSource.Registry r:
                return await PullFromRegistryAsync(r.Reference, arch, options, progress, ct).ConfigureAwait(false);
            default:
                throw new InvalidOperationException("unknown image source");
        }
    }

    private async Task<Baseline> PullFromRegistryAsync(ImageReference reference, string arch, PullOptions options,
        IProgress<ImageProgress>? progress, CancellationToken ct)
    {
        string platform = "linux/" + arch;
        using var client = new RegistryClient(new AuthStore(_paths), new RegistryOptions(options.InsecureRegistries));
        progress?.Report(new ImageProgress("resolving", $"resolving {reference}"));
        FetchedManifest top = await client.GetManifestAsync(reference, reference.ManifestReference, ct).ConfigureAwait(false);
        FetchedManifest manifest = top;
        if (OciMediaTypes.IsIndex(top.MediaType))
        {
            var entry = OciLayout.PickPlatform(OciLayout.ParseIndexDocument(top.Bytes, $"index {top.Digest}"), $"{reference} (index {top.Digest[..19]})", arch);
            manifest = await client.GetManifestAsync(reference, entry.Digest, ct).ConfigureAwait(false);
        }
        if (!OciMediaTypes.IsManifest(manifest.MediaType))
            throw MicroagentException.Unsupported($"{reference} has unsupported manifest media type `{manifest.MediaType}`",
                "use an image with an OCI or Docker schema 2 manifest");

        var content = Content();
        var manifestDesc = new OciDescriptor(manifest.MediaType, manifest.Digest, manifest.Bytes.Length, new Dictionary<string, string>(), arch, "linux");
        string hex = manifest.Digest[7..];
        if (TryLoad(hex, reference.ToString()) is { } cached)
        {
            SetRef(reference.ToString(), platform, manifest.Digest);
            progress?.Report(new ImageProgress("ready", $"{reference} is up to date ({manifest.Digest[..19]})"));
            return cached;
        }
        WriteBlob(content, manifest.Digest, manifest.Bytes);

        // The config is small: fetch it before the lock so the image can be validated early.
        using var manifestDoc = JsonDocument.Parse(manifest.Bytes);
        OciDescriptor configDesc;
        try
        {
            configDesc = OciLayout.ParseDescriptor(manifestDoc.RootElement.GetProperty("config"), manifest.Digest);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw MicroagentException.Permanent($"manifest {manifest.Digest} of {reference} has no valid config descriptor", "check the registry");
        }
        if (!File.Exists(content.BlobPath(configDesc)))
            await client.DownloadBlobAsync(reference, configDesc, content.BlobPath(configDesc), null, ct).ConfigureAwait(false);
        OciImage image = content.ReadImage(manifestDesc, arch);

        var downloads = new Dictionary<string, Task<string>>(StringComparer.Ordinal);
        using var gate = new SemaphoreSlim(ParallelDownloads);
        long total = image.Layers.Sum(l => l.Size), done = 0;
        int layersDone = 0;
        Task<string> Download(OciDescriptor layer) => downloads.TryGetValue(layer.Digest, out var t) ? t : downloads[layer.Digest] = Task.Run(async () =>
        {
            string path = content.BlobPath(layer);
            if (File.Exists(path) && new FileInfo(path).Length == layer.Size)
            {
                Interlocked.Add(ref done, layer.Size);
            }
            else
            {
                await gate.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    var bytes = new SyncProgress<long>(n =>
                    {
                        long d = Interlocked.Add(ref done, n);
                        progress?.Report(new ImageProgress("downloading", $"downloading {reference}", Volatile.Read(ref layersDone), image.Layers.Count, d, total));
                    });
                    await client.DownloadBlobAsync(reference, layer, path, bytes, ct).ConfigureAwait(false);
                }
                finally { gate.Release(); }
            }
            int ld = Interlocked.Increment(ref layersDone);
            progress?.Report(new ImageProgress("downloading", $"downloaded layer {layer.Digest[..19]}", ld, image.Layers.Count, Volatile.Read(ref done), total));
            return path;
        }, ct);

        lock (downloads) { foreach (var l in image.Layers) Download(l); } // all layers in parallel; each is applied as soon as it is complete
        try
        {
            var baseline = await EnsureBuiltAsync(image, reference.ToString(), platform, options, progress, async (d, c) =>
            {
                Task<string> t;
                lock (downloads) t = Download(d);
                string path = await t.WaitAsync(c).ConfigureAwait(false);
                return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            }, ct).ConfigureAwait(false);
            return baseline;
        }
        finally
        {
            // Layer blobs are only needed to build the baseline; a failed pull keeps completed ones for the retry.
            try { await Task.WhenAll(downloads.Values).ConfigureAwait(false); } catch (Exception) { /* reported by the build */ }
            if (TryLoad(hex, reference.ToString()) is not null)
                foreach (var l in image.Layers) TryDeleteFile(content.BlobPath(l));
        }
    }

    /// <summary>Returns the cached baseline for <paramref name="image"/> or builds it once (lock, re-check, build, rename).</summary>
    private async Task<Baseline> EnsureBuiltAsync(OciImage image, string display, string platform, PullOptions options,
        IProgress<ImageProgress>? progress, Func<OciDescriptor, CancellationToken, Task<Stream>> openLayer, CancellationToken ct)
    {
        string hex = image.ManifestDigest["sha256:".Length..];
        Baseline baseline;
        if (TryLoad(hex, display) is { } cached) baseline = cached;
        else
        {
            using (await FileLock.AcquireAsync(Path.Combine(BaselinesDir, $"{hex}.lock"), ct).ConfigureAwait(false))
            {
                if (TryLoad(hex, display) is { } built) baseline = built; // another caller built it while we waited
                else
                {
                    CleanStale(hex);
                    baseline = await BuildAsync(image, hex, display, platform, options, progress, openLayer, ct).ConfigureAwait(false);
                }
            }
        }
        SetRef(display, platform, image.ManifestDigest);
        progress?.Report(new ImageProgress("ready", $"{display} ready ({baseline.ManifestDigest[..19]}, {baseline.SizeBytes >> 20} MiB baseline)"));
        return baseline;
    }

    /// <summary>Removes what a crashed builder of <paramref name="hex"/> left; the caller holds its lock.</summary>
    private void CleanStale(string hex)
    {
        foreach (string stale in Directory.GetFiles(BaselinesDir, $".{hex}.*.tmp")) TryDeleteFile(stale);
        if (Directory.Exists(_paths.Tmp))
            foreach (string staging in Directory.GetDirectories(_paths.Tmp, $"rootfs-{hex[..12]}-*")) KernelStore.TryDeleteDirectory(staging);
    }

    /// <summary>
    /// The default image's OCI layout: <c>$MICROAGENT_DEFAULT_IMAGE</c>, else
    /// <c>&lt;app&gt;/../share/microagent/images/default</c>, else the first <c>build/images/default</c>
    /// found walking up from the application directory; null if none exists.
    /// </summary>
    public static string? FindDefaultImageLayout()
    {
        static bool IsLayout(string d) => File.Exists(Path.Combine(d, "oci-layout"));
        if (Environment.GetEnvironmentVariable(DefaultImageVariable) is { Length: > 0 } env && IsLayout(env)) return Path.GetFullPath(env);
        string share = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "share", "microagent", "images", "default"));
        if (IsLayout(share)) return share;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "build", "images", "default");
            if (IsLayout(candidate)) return candidate;
        }
        return null;
    }

    private async Task<Baseline> BuildAsync(OciImage image, string hex, string display, string platform, PullOptions options,
        IProgress<ImageProgress>? progress, Func<OciDescriptor, CancellationToken, Task<Stream>> openLayer, CancellationToken ct)
    {
        StatePaths.EnsureDirectory(_paths.Tmp);
        string staging = Path.Combine(_paths.Tmp, $"rootfs-{hex[..12]}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(staging, (UnixFileMode)0b111_101_101);
        string tmpDisk = Path.Combine(BaselinesDir, $".{hex}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var applier = new LayerApplier(staging, _options.Limits);
            long compressed = image.Layers.Sum(l => l.Size), applied = 0;
            for (int i = 0; i < image.Layers.Count; i++)
            {
                OciDescriptor layer = image.Layers[i];
                Stream blob = await openLayer(layer, ct).ConfigureAwait(false);
                progress?.Report(new ImageProgress("applying", $"applying layer {i + 1}/{image.Layers.Count} {layer.Digest[..19]} ({layer.Size} bytes)",
                    i, image.Layers.Count, applied, compressed));
                await Task.Run(() => ApplyLayer(blob, layer, image.DiffIds.Count > i ? image.DiffIds[i] : null, applier, ct), ct).ConfigureAwait(false);
                applied += layer.Size;
            }

            long content = MeasureTree(staging, out long inodes);
            long size = options.SizeMiB is { } mib ? mib << 20 : RoundUp(content + content / 10 + _options.HeadroomBytes, 1 << 20);
            if (size < content + content / 20)
                throw MicroagentException.Invalid($"--size-mib {size >> 20} is too small for the image ({content >> 20} MiB of content)",
                    $"use at least {(content + content / 10 >> 20) + 16} MiB, or leave the size out");
            long inodeCount = Math.Max(inodes * 2, 16384);
            progress?.Report(new ImageProgress("building", $"creating ext4 baseline ({size >> 20} MiB, {inodes} files)", image.Layers.Count, image.Layers.Count, compressed, compressed));
            try
            {
                await ExternalTool.RunAsync("mke2fs", "e2fsprogs",
                    ["-q", "-t", "ext4", "-b", "4096", "-m", "0", "-N", inodeCount.ToString(CultureInfo.InvariantCulture),
                     "-d", staging, "-E", "root_owner=0:0", "-L", "rootfs", "-F", tmpDisk, $"{size >> 10}k"], ct).ConfigureAwait(false);
            }
            catch (MicroagentException e) when (e.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase))
            {
                throw new MicroagentException(ErrorKind.ResourceExhausted, $"no space left while building the baseline of {display}",
                    "free disk space in the state directory (microagent image prune), then retry", e);
            }
            File.SetUnixFileMode(tmpDisk, UnixFileMode.UserRead | UnixFileMode.UserWrite);

            string final = Path.Combine(BaselinesDir, $"{hex}.ext4");
            File.Move(tmpDisk, final, overwrite: true);
            var baseline = new Baseline(display, image.ManifestDigest, final, new FileInfo(final).Length, image.Config)
            {
                Platform = platform,
                CreatedAt = DateTimeOffset.UtcNow,
                LayerCount = image.Layers.Count,
                ContentBytes = content,
                CompressedBytes = compressed,
            };
            StatePaths.WriteAtomic(Path.Combine(BaselinesDir, $"{hex}.json"),
                JsonSerializer.SerializeToUtf8Bytes(baseline, ImageJsonContext.Default.Baseline));
            return baseline;
        }
        catch (IOException e) when (e.HResult == 28)
        {
            throw new MicroagentException(ErrorKind.ResourceExhausted, $"no space left while building the baseline of {display}",
                "free disk space in the state directory (microagent image prune), then retry", e);
        }
        finally
        {
            KernelStore.TryDeleteDirectory(staging);
            TryDeleteFile(tmpDisk);
        }
    }

    private static void ApplyLayer(Stream blob, OciDescriptor layer, string? diffId, LayerApplier applier, CancellationToken ct)
    {
        using var compressed = new VerifyingStream(blob, layer.Digest, layer.Size);
        using var tar = LayerApplier.OpenDecompressed(compressed, layer.MediaType);
        // The uncompressed stream is checked against the config's diff_id when there is one.
        using Stream checkedTar = diffId is null || ReferenceEquals(tar, compressed) ? tar : new VerifyingStream(tar, diffId);
        applier.Apply(checkedTar, ct);
        if (checkedTar is VerifyingStream v && !ReferenceEquals(v, compressed)) v.DrainAndVerify();
        compressed.DrainAndVerify();
    }

    // ---- cache management ----

    /// <summary>Every built baseline with its names and users, newest first.</summary>
    public IReadOnlyList<ImageInfo> List()
    {
        if (!Directory.Exists(BaselinesDir)) return [];
        var refs = LoadRefs().Refs;
        var users = DiskUsers();
        var list = new List<ImageInfo>();
        foreach (string meta in Directory.GetFiles(BaselinesDir, "*.json"))
        {
            string hex = Path.GetFileNameWithoutExtension(meta);
            if (TryLoad(hex, null) is not { } b) continue;
            list.Add(new ImageInfo(b,
                refs.Where(r => r.ManifestDigest == b.ManifestDigest).Select(r => r.Reference).Distinct().ToList(),
                users.TryGetValue(b.Path, out var u) ? u : []));
        }
        return list.OrderByDescending(i => i.Baseline.CreatedAt).ToList();
    }

    /// <summary>
    /// The cached image named by <paramref name="nameOrDigest"/>: a reference as given to pull/run
    /// (normalised for registries), a manifest digest, or a unique prefix of its hex.
    /// </summary>
    public ImageInfo Inspect(string nameOrDigest, string? architecture = null)
    {
        string platform = "linux/" + Platforms.Normalize(architecture);
        var all = List();
        string? normalized = null;
        try { normalized = ImageSource.Parse(nameOrDigest).Display; } catch (MicroagentException) { }
        var byName = all.Where(i => i.References.Contains(nameOrDigest) || (normalized is not null && i.References.Contains(normalized))).ToList();
        if (byName.Count > 1) byName = byName.Where(i => i.Baseline.Platform == platform).ToList();
        if (byName.Count == 1) return byName[0];
        string hex = nameOrDigest.StartsWith("sha256:", StringComparison.Ordinal) ? nameOrDigest[7..] : nameOrDigest;
        var byDigest = hex.Length >= 6 ? all.Where(i => i.Baseline.ManifestDigest[7..].StartsWith(hex, StringComparison.Ordinal)).ToList() : [];
        if (byDigest.Count == 1) return byDigest[0];
        if (byDigest.Count > 1) throw MicroagentException.Invalid($"`{nameOrDigest}` matches {byDigest.Count} images", "give more digest characters");
        throw MicroagentException.NotFound($"image `{nameOrDigest}` is not in the cache", "see `microagent image list`, or pull it with `microagent image pull`");
    }

    /// <summary>
    /// Removes a name; the baseline goes too when no other name points at it. A baseline that a
    /// workspace disk uses is never removed (conflict). Returns the removed baseline's path, if any.
    /// </summary>
    public string? Remove(string nameOrDigest, string? architecture = null)
    {
        var info = Inspect(nameOrDigest, architecture);
        using var refsLock = FileLock.AcquireAsync(Path.Combine(_paths.Images, "refs.lock")).GetAwaiter().GetResult();
        var refs = LoadRefs();
        bool byDigest = !info.References.Contains(nameOrDigest) && !info.References.Contains(SafeDisplay(nameOrDigest) ?? "");
        var names = byDigest ? info.References.ToHashSet() : new HashSet<string> { info.References.Contains(nameOrDigest) ? nameOrDigest : SafeDisplay(nameOrDigest)! };
        bool others = refs.Refs.Any(r => r.ManifestDigest == info.Baseline.ManifestDigest && !names.Contains(r.Reference));
        if (!others && info.UsedBy.Count > 0)
            throw new MicroagentException(ErrorKind.Conflict, $"image {info.Baseline.ManifestDigest[..19]} is used by {info.UsedBy.Count} workspace disk(s): {string.Join(", ", info.UsedBy)}",
                "delete those workspaces first");
        refs.Refs.RemoveAll(r => r.ManifestDigest == info.Baseline.ManifestDigest && names.Contains(r.Reference));
        SaveRefs(refs);
        if (others) return null;
        DeleteBaseline(info.Baseline);
        return info.Baseline.Path;
    }

    /// <summary>
    /// Removes baselines no name points at (with <paramref name="all"/>: every baseline), never one a
    /// workspace disk uses, plus leftover temporary files and layer blobs of finished pulls.
    /// </summary>
    public PruneResult Prune(bool all)
    {
        var removed = new List<string>();
        var kept = new List<string>();
        long reclaimed = 0;
        using (FileLock.AcquireAsync(Path.Combine(_paths.Images, "refs.lock")).GetAwaiter().GetResult())
        {
            var refs = LoadRefs();
            foreach (var info in List())
            {
                if (!all && info.References.Count > 0) continue;
                if (info.UsedBy.Count > 0) { kept.Add(info.Baseline.ManifestDigest); continue; }
                reclaimed += AllocatedBytes(info.Baseline.Path);
                DeleteBaseline(info.Baseline);
                refs.Refs.RemoveAll(r => r.ManifestDigest == info.Baseline.ManifestDigest);
                removed.Add(info.Baseline.ManifestDigest);
            }
            SaveRefs(refs);
        }
        // Temporary files older than an hour belong to no live pull (live ones are touched continuously).
        var cutoff = DateTime.UtcNow.AddHours(-1);
        foreach (string dir in new[] { BaselinesDir, Path.Combine(ContentDir, "blobs", "sha256") }.Where(Directory.Exists))
            foreach (string f in Directory.GetFiles(dir, "*.tmp").Where(f => File.GetLastWriteTimeUtc(f) < cutoff))
            {
                reclaimed += new FileInfo(f).Length;
                TryDeleteFile(f);
            }
        if (Directory.Exists(_paths.Tmp))
            foreach (string d in Directory.GetDirectories(_paths.Tmp, "rootfs-*").Where(d => Directory.GetLastWriteTimeUtc(d) < cutoff))
                KernelStore.TryDeleteDirectory(d);
        return new PruneResult(removed, reclaimed, kept);
    }

    private void DeleteBaseline(Baseline b)
    {
        string hex = b.ManifestDigest[7..];
        using (FileLock.AcquireAsync(Path.Combine(BaselinesDir, $"{hex}.lock")).GetAwaiter().GetResult())
        {
            TryDeleteFile(Path.Combine(BaselinesDir, $"{hex}.json")); // first: a disk without its json is never used
            TryDeleteFile(Path.Combine(BaselinesDir, $"{hex}.ext4"));
        }
        TryDeleteFile(Path.Combine(BaselinesDir, $"{hex}.lock"));
    }

    /// <summary>Baseline path → workspace disks (as the workspaces side lists them) whose qcow2 backing chain includes it.</summary>
    private Dictionary<string, List<string>> DiskUsers()
    {
        var users = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (string disk in _workspaceDisks())
            foreach (string backing in DiskOverlay.BackingChain(disk))
            {
                if (!users.TryGetValue(backing, out var list)) users[backing] = list = [];
                list.Add(disk);
            }
        return users;
    }

    private static long AllocatedBytes(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;

    // ---- names ----

    private ImageRefRecord? FindRef(string display, string platform)
        => LoadRefs().Refs.FirstOrDefault(r => r.Reference == display && r.Platform == platform);

    private void SetRef(string display, string platform, string digest)
    {
        if (FindRef(display, platform) is { } r && r.ManifestDigest == digest) return;
        using var _ = FileLock.AcquireAsync(Path.Combine(_paths.Images, "refs.lock")).GetAwaiter().GetResult();
        var refs = LoadRefs();
        refs.Refs.RemoveAll(x => x.Reference == display && x.Platform == platform);
        refs.Refs.Add(new ImageRefRecord(display, platform, digest, DateTimeOffset.UtcNow));
        SaveRefs(refs);
    }

    private ImageRefs LoadRefs()
    {
        try
        {
            return File.Exists(RefsPath) ? JsonSerializer.Deserialize(File.ReadAllBytes(RefsPath), ImageJsonContext.Default.ImageRefs) ?? new ImageRefs([]) : new ImageRefs([]);
        }
        catch (JsonException)
        {
            return new ImageRefs([]);
        }
    }

    private void SaveRefs(ImageRefs refs)
        => StatePaths.WriteAtomic(RefsPath, JsonSerializer.SerializeToUtf8Bytes(refs, ImageJsonContext.Default.ImageRefs));

    private static string? SafeDisplay(string s)
    {
        try { return ImageSource.Parse(s).Display; } catch (MicroagentException) { return null; }
    }

    // ---- content ----

    private OciLayout Content()
    {
        StatePaths.EnsureDirectory(ContentDir);
        StatePaths.EnsureDirectory(Path.Combine(ContentDir, "blobs"));
        StatePaths.EnsureDirectory(Path.Combine(ContentDir, "blobs", "sha256"));
        if (!File.Exists(Path.Combine(ContentDir, "oci-layout")))
            StatePaths.WriteAtomic(Path.Combine(ContentDir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        if (!File.Exists(Path.Combine(ContentDir, "index.json")))
            StatePaths.WriteAtomic(Path.Combine(ContentDir, "index.json"), "{\"schemaVersion\":2,\"manifests\":[]}");
        return OciLayout.Open(ContentDir);
    }

    /// <summary>Writes a small blob into the content store (temp + rename).</summary>
    internal static void WriteBlob(OciLayout layout, string digest, byte[] bytes)
    {
        string path = Path.Combine(layout.Root, "blobs", "sha256", digest[7..]);
        if (!File.Exists(path)) StatePaths.WriteAtomic(path, bytes);
    }

    private Baseline? TryLoad(string hex, string? displayRef)
    {
        string meta = Path.Combine(BaselinesDir, $"{hex}.json");
        string disk = Path.Combine(BaselinesDir, $"{hex}.ext4");
        if (!File.Exists(meta) || !File.Exists(disk)) return null;
        try
        {
            var b = JsonSerializer.Deserialize(File.ReadAllBytes(meta), ImageJsonContext.Default.Baseline);
            return b is null ? null : b with { Path = disk, ImageRef = displayRef ?? b.ImageRef };
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static void TryDeleteFile(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>Adapts image progress to the phase lines of <c>run</c>: one line per phase change, never per byte.</summary>
    private static IProgress<ImageProgress>? PhaseLines(IProgress<string>? lines)
    {
        if (lines is null) return null;
        string? last = null;
        return new SyncProgress<ImageProgress>(p =>
        {
            if (p.Phase == "downloading" && p.Message.StartsWith("downloading", StringComparison.Ordinal)) { if (last == "downloading") return; }
            last = p.Phase;
            lines.Report(p.Message);
        });
    }

    /// <summary>
    /// Bytes the tree needs on ext4 (4 KiB blocks per file and directory) and its inode count.
    /// Symlinks are counted, never followed (an image may hold a link to "/").
    /// </summary>
    private static long MeasureTree(string root, out long inodes)
    {
        long bytes = 0, count = 1;
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(root));
        while (pending.Count > 0)
        {
            foreach (var info in pending.Pop().EnumerateFileSystemInfos())
            {
                count++;
                if (info.LinkTarget is not null) bytes += 4096;
                else if (info is DirectoryInfo d) { bytes += 4096; pending.Push(d); }
                else bytes += RoundUp(((FileInfo)info).Length, 4096);
            }
        }
        inodes = count;
        return bytes;
    }

    private static long RoundUp(long v, long unit) => (v + unit - 1) / unit * unit;
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (no synchronisation context hop).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => report(value);
}
