using System.Text.Json;
using Microagent.Errors;
using Microagent.Kernels;
using Microagent.Registries;
using Microagent.Tools;

using Microagent.Workspaces;

namespace Microagent.Images;

/// <summary>
/// Images and their sealed ext4 baselines (docs/ARCHITECTURE.md "Images and disks"). Layout under <c>images/</c>:
/// <c>baselines/&lt;manifest-hex&gt;.ext4</c> + <c>.json</c> (the <see cref="Baseline"/>, written after
/// the disk, so its presence means the disk is complete) + <c>.lock</c> (serialises builders; stale
/// temps are removed under it); <c>content/</c> an OCI layout holding pulled manifests and configs
/// (and layer blobs until their baseline is built); <c>refs.json</c> the names. A baseline is keyed
/// by the digest of its platform-specific manifest, so digest + platform identify it.
/// </summary>
public sealed partial class ImageStore
{
    /// <summary>Environment variable naming the default image's OCI layout directory.</summary>
    public const string DefaultImageVariable = "MICROAGENT_DEFAULT_IMAGE";

    private const int ParallelDownloads = 3;
    private readonly StatePaths _paths;
    private readonly BaselineOptions _options;
    private readonly Func<IEnumerable<string>> _workspaceDisks;
    private readonly Action<string> _dropCaches;
    private readonly ImageRefIndex _refs;

    /// <summary>Uses the images directory of <paramref name="paths"/>.</summary>
    public ImageStore(StatePaths paths) : this(paths, new BaselineOptions()) { }

    /// <summary>Uses the images directory of <paramref name="paths"/> with <paramref name="options"/>.</summary>
    public ImageStore(StatePaths paths, BaselineOptions options)
        : this(paths, options, () => WorkspaceLayout.AllDisks(paths), digest => new Workspaces.Templates.TemplateStore(paths).DropForImage(digest)) { }

    /// <summary>
    /// As above; <paramref name="workspaceDisks"/> lists every disk that may be backed by a baseline (the workspaces side owns
    /// where they live: <see cref="WorkspaceLayout.AllDisks"/> by default), so that none in use is removed; <paramref name="dropCaches"/>
    /// is told an image's baseline is about to go, so that caches made from it that nothing else reads (warm-start templates,
    /// docs/ARCHITECTURE.md "Warm start") go first instead of keeping it.
    /// </summary>
    internal ImageStore(StatePaths paths, BaselineOptions options, Func<IEnumerable<string>> workspaceDisks, Action<string>? dropCaches = null)
    {
        _paths = paths;
        _options = options;
        _workspaceDisks = workspaceDisks;
        _dropCaches = dropCaches ?? (_ => { });
        _refs = new ImageRefIndex(paths.Images);
    }

    private BaselineBuilder Builder => new(_paths, BaselinesDir, _options);

    /// <summary>Where baselines live.</summary>
    public string BaselinesDir => Path.Combine(_paths.Images, "baselines");

    /// <summary>OCI layout holding pulled manifests, configs and in-flight layers.</summary>
    public string ContentDir => Path.Combine(_paths.Images, "content");

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

        if (options.PreferLocal && source is not ImageSource.Layout && _refs.Find(source.Display, platform) is { } known
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
            _refs.Set(reference.ToString(), platform, manifest.Digest);
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
                    Builder.CleanStale(hex);
                    baseline = await Builder.BuildAsync(image, hex, display, platform, options, progress, openLayer, ct).ConfigureAwait(false);
                }
            }
        }
        _refs.Set(display, platform, image.ManifestDigest);
        progress?.Report(new ImageProgress("ready", $"{display} ready ({baseline.ManifestDigest[..19]}, {baseline.SizeBytes >> 20} MiB baseline)"));
        return baseline;
    }

    /// <summary>
    /// The default image's OCI layout: <c>$MICROAGENT_DEFAULT_IMAGE</c>, else <c>microagent-images/default</c> where the
    /// package's native pieces are (<see cref="NativeBinaries.SearchDirectories"/>), else
    /// <c>&lt;app&gt;/../share/microagent/images/default</c>, else the first <c>build/images/default</c>
    /// found walking up from the application directory; null if none exists.
    /// </summary>
    public static string? FindDefaultImageLayout()
    {
        static bool IsLayout(string d) => File.Exists(Path.Combine(d, "oci-layout"));
        if (Environment.GetEnvironmentVariable(DefaultImageVariable) is { Length: > 0 } env && IsLayout(env)) return Path.GetFullPath(env);
        foreach (string dir in NativeBinaries.SearchDirectories())
            if (Path.Combine(dir, "microagent-images", "default") is var packaged && IsLayout(packaged)) return Path.GetFullPath(packaged);
        string share = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "share", "microagent", "images", "default"));
        if (IsLayout(share)) return share;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "build", "images", "default");
            if (IsLayout(candidate)) return candidate;
        }
        return null;
    }

    // ---- cache management ----

    /// <summary>Every built baseline with its names and users, newest first.</summary>
    public IReadOnlyList<ImageInfo> List()
    {
        if (!Directory.Exists(BaselinesDir)) return [];
        var refs = _refs.Load().Refs;
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
        using var refsLock = _refs.Lock();
        var refs = _refs.Load();
        bool byDigest = !info.References.Contains(nameOrDigest) && !info.References.Contains(SafeDisplay(nameOrDigest) ?? "");
        var names = byDigest ? info.References.ToHashSet() : new HashSet<string> { info.References.Contains(nameOrDigest) ? nameOrDigest : SafeDisplay(nameOrDigest)! };
        bool others = refs.Refs.Any(r => r.ManifestDigest == info.Baseline.ManifestDigest && !names.Contains(r.Reference));
        if (!others && info.UsedBy.Count > 0)
        {
            _dropCaches(info.Baseline.ManifestDigest);
            info = info with { UsedBy = DiskUsers().GetValueOrDefault(info.Baseline.Path) ?? [] };
        }
        if (!others && info.UsedBy.Count > 0)
            throw new MicroagentException(ErrorKind.Conflict, $"image {info.Baseline.ManifestDigest[..19]} is used by {info.UsedBy.Count} workspace disk(s): {string.Join(", ", info.UsedBy)}",
                "delete those workspaces first");
        refs.Refs.RemoveAll(r => r.ManifestDigest == info.Baseline.ManifestDigest && names.Contains(r.Reference));
        _refs.Save(refs);
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
        using (_refs.Lock())
        {
            var refs = _refs.Load();
            var candidates = List().Where(i => all || i.References.Count == 0).ToList();
            foreach (var info in candidates.Where(i => i.UsedBy.Count > 0)) _dropCaches(info.Baseline.ManifestDigest);
            foreach (var info in candidates.Count > 0 ? List() : [])
            {
                if (!all && info.References.Count > 0) continue;
                if (info.UsedBy.Count > 0) { kept.Add(info.Baseline.ManifestDigest); continue; }
                reclaimed += AllocatedBytes(info.Baseline.Path);
                DeleteBaseline(info.Baseline);
                refs.Refs.RemoveAll(r => r.ManifestDigest == info.Baseline.ManifestDigest);
                removed.Add(info.Baseline.ManifestDigest);
            }
            _refs.Save(refs);
        }
        // Temporary files, and partial blobs an interrupted pull left for the next one to resume, older than an hour belong to no
        // live pull (live ones are touched continuously).
        var cutoff = DateTime.UtcNow.AddHours(-1);
        foreach (string dir in new[] { BaselinesDir, Path.Combine(ContentDir, "blobs", "sha256") }.Where(Directory.Exists))
            foreach (string f in Directory.GetFiles(dir, "*.tmp").Concat(Directory.GetFiles(dir, "*" + Registries.RegistryClient.PartialSuffix))
                .Where(f => File.GetLastWriteTimeUtc(f) < cutoff))
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


}
