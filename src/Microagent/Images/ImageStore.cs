using System.Text.Json;
using Microagent.Errors;
using Microagent.Kernels;
using Microagent.Tools;

namespace Microagent.Images;

/// <summary>Tunables for baseline builds.</summary>
/// <param name="HeadroomBytes">Free space added to the content size (the guest writes into its overlay, which grows into it).</param>
/// <param name="Limits">Caps on layer content.</param>
public sealed record BaselineOptions(long HeadroomBytes = 256L << 20, LayerLimits? Limits = null);

/// <summary>
/// Images and their sealed ext4 baselines (DESIGN.md decision 5). Layout:
/// <c>images/baselines/&lt;manifest-hex&gt;.ext4</c> and <c>&lt;manifest-hex&gt;.json</c> (the
/// <see cref="Baseline"/>; written after the disk, so its presence means the disk is complete),
/// <c>&lt;manifest-hex&gt;.lock</c> serialising builders.
/// </summary>
public sealed class ImageStore
{
    /// <summary>Environment variable naming the default image's OCI layout directory.</summary>
    public const string DefaultImageVariable = "MICROAGENT_DEFAULT_IMAGE";

    private readonly StatePaths _paths;
    private readonly BaselineOptions _options;

    /// <summary>Uses the images directory of <paramref name="paths"/>.</summary>
    public ImageStore(StatePaths paths) : this(paths, new BaselineOptions()) { }

    /// <summary>Uses the images directory of <paramref name="paths"/> with <paramref name="options"/>.</summary>
    public ImageStore(StatePaths paths, BaselineOptions options)
    {
        _paths = paths;
        _options = options;
    }

    /// <summary>Where baselines live.</summary>
    public string BaselinesDir => Path.Combine(_paths.Images, "baselines");

    /// <summary>
    /// The baseline for <paramref name="imageRef"/> (null or <c>default</c>: the embedded default
    /// image; <c>oci:PATH[:TAG]</c>: a local OCI layout), building it on first use. Later calls
    /// read only index.json, the manifest and the config.
    /// </summary>
    public async Task<Baseline> EnsureBaselineAsync(string? imageRef, IProgress<string>? progress = null, CancellationToken ct = default)
    {
        var (layoutDir, tag, displayRef) = ParseRef(imageRef);
        var layout = OciLayout.Open(layoutDir);
        OciImage image = layout.Resolve(tag);
        string hex = image.ManifestDigest["sha256:".Length..];

        StatePaths.EnsureDirectory(BaselinesDir);
        if (TryLoad(hex, displayRef) is { } cached) return cached;

        using (await FileLock.AcquireAsync(Path.Combine(BaselinesDir, $"{hex}.lock"), ct).ConfigureAwait(false))
        {
            if (TryLoad(hex, displayRef) is { } built) return built; // another caller built it while we waited
            foreach (string stale in Directory.GetFiles(BaselinesDir, $".{hex}.*.tmp")) File.Delete(stale);
            return await BuildAsync(layout, image, hex, displayRef, progress, ct).ConfigureAwait(false);
        }
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

    private async Task<Baseline> BuildAsync(OciLayout layout, OciImage image, string hex, string displayRef,
        IProgress<string>? progress, CancellationToken ct)
    {
        StatePaths.EnsureDirectory(_paths.Tmp);
        string staging = Path.Combine(_paths.Tmp, $"rootfs-{hex[..12]}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(staging, (UnixFileMode)0b111_101_101);
        string tmpDisk = Path.Combine(BaselinesDir, $".{hex}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var applier = new LayerApplier(staging, _options.Limits);
            for (int i = 0; i < image.Layers.Count; i++)
            {
                OciDescriptor layer = image.Layers[i];
                progress?.Report($"applying layer {i + 1}/{image.Layers.Count} {layer.Digest[..19]} ({layer.Size} bytes)");
                await Task.Run(() => ApplyLayer(layout, layer, image.DiffIds.Count > i ? image.DiffIds[i] : null, applier, ct), ct).ConfigureAwait(false);
            }

            long content = MeasureTree(staging, out long inodes);
            long size = RoundUp(content + content / 10 + _options.HeadroomBytes, 1 << 20);
            long inodeCount = Math.Max(inodes * 2, 16384);
            progress?.Report($"creating ext4 baseline ({size >> 20} MiB, {inodes} files)");
            await ExternalTool.RunAsync("mke2fs", "e2fsprogs",
                ["-q", "-t", "ext4", "-b", "4096", "-m", "0", "-N", inodeCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
                 "-d", staging, "-E", "root_owner=0:0", "-L", "rootfs", "-F", tmpDisk, $"{size >> 10}k"], ct).ConfigureAwait(false);
            File.SetUnixFileMode(tmpDisk, UnixFileMode.UserRead | UnixFileMode.UserWrite);

            string final = Path.Combine(BaselinesDir, $"{hex}.ext4");
            File.Move(tmpDisk, final, overwrite: true);
            var baseline = new Baseline(displayRef, image.ManifestDigest, final, new FileInfo(final).Length, image.Config);
            StatePaths.WriteAtomic(Path.Combine(BaselinesDir, $"{hex}.json"),
                JsonSerializer.SerializeToUtf8Bytes(baseline, ImageJsonContext.Default.Baseline));
            progress?.Report($"baseline ready: {final}");
            return baseline;
        }
        finally
        {
            KernelStore.TryDeleteDirectory(staging);
            if (File.Exists(tmpDisk)) File.Delete(tmpDisk);
        }
    }

    private static void ApplyLayer(OciLayout layout, OciDescriptor layer, string? diffId, LayerApplier applier, CancellationToken ct)
    {
        using var compressed = new VerifyingStream(layout.OpenBlob(layer), layer.Digest, layer.Size);
        using var tar = LayerApplier.OpenDecompressed(compressed, layer.MediaType);
        // The uncompressed stream is checked against the config's diff_id when there is one.
        using Stream checkedTar = diffId is null || ReferenceEquals(tar, compressed) ? tar : new VerifyingStream(tar, diffId);
        applier.Apply(checkedTar, ct);
        if (checkedTar is VerifyingStream v && !ReferenceEquals(v, compressed)) v.DrainAndVerify();
        compressed.DrainAndVerify();
    }

    private Baseline? TryLoad(string hex, string displayRef)
    {
        string meta = Path.Combine(BaselinesDir, $"{hex}.json");
        string disk = Path.Combine(BaselinesDir, $"{hex}.ext4");
        if (!File.Exists(meta) || !File.Exists(disk)) return null;
        try
        {
            var b = JsonSerializer.Deserialize(File.ReadAllBytes(meta), ImageJsonContext.Default.Baseline);
            return b is null ? null : b with { Path = disk, ImageRef = displayRef };
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static (string LayoutDir, string? Tag, string Display) ParseRef(string? imageRef)
    {
        if (imageRef is null or "default")
        {
            string dir = FindDefaultImageLayout() ?? throw MicroagentException.NotFound(
                "the default image was not found (no $MICROAGENT_DEFAULT_IMAGE, share/microagent/images/default or build/images/default)",
                "build it with `make build` (scripts/build-default-image.sh build/images/default), or set $MICROAGENT_DEFAULT_IMAGE");
            return (dir, null, "default");
        }
        if (imageRef.StartsWith("oci:", StringComparison.Ordinal))
        {
            string rest = imageRef["oci:".Length..];
            if (rest.Length == 0) throw MicroagentException.Invalid("`oci:` needs a path: oci:PATH[:TAG]");
            if (Directory.Exists(rest)) return (rest, null, imageRef);
            int colon = rest.LastIndexOf(':');
            if (colon > 0 && !rest[(colon + 1)..].Contains('/'))
                return (rest[..colon], rest[(colon + 1)..], imageRef);
            return (rest, null, imageRef);
        }
        throw MicroagentException.Unsupported($"image reference `{imageRef}`: registry pulls are not implemented yet",
            "export the image to an OCI layout (e.g. `skopeo copy docker://IMAGE oci:DIR:TAG`) and use oci:DIR:TAG, or use `default`");
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
