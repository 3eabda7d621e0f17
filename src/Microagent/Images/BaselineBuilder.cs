using System.Globalization;
using System.Text.Json;
using Microagent.Errors;
using Microagent.Interop;
using Microagent.Kernels;
using Microagent.Tools;

namespace Microagent.Images;

/// <summary>
/// Builds one sealed ext4 baseline from an image's layers (docs/ARCHITECTURE.md "Images and disks"): layers are verified
/// and applied into a staging tree under <c>tmp/</c>, <c>mke2fs -d</c> writes a temporary disk in <c>baselines/</c>, which is
/// renamed into place before its <c>.json</c> is written. Invariant: a <c>.json</c> next to a disk means the disk is complete;
/// a crash leaves only temporaries, which <see cref="CleanStale"/> removes under the baseline's lock.
/// </summary>
internal sealed class BaselineBuilder(StatePaths paths, string baselinesDir, BaselineOptions options)
{
    private readonly StatePaths _paths = paths;
    private readonly BaselineOptions _options = options;
    private string BaselinesDir { get; } = baselinesDir;

    /// <summary>Removes what a crashed builder of <paramref name="hex"/> left; the caller holds its lock.</summary>
    public void CleanStale(string hex)
    {
        foreach (string stale in Directory.GetFiles(BaselinesDir, $".{hex}.*.tmp")) TryDeleteFile(stale);
        if (Directory.Exists(_paths.Tmp))
            foreach (string staging in Directory.GetDirectories(_paths.Tmp, $"rootfs-{hex[..12]}-*")) KernelStore.TryDeleteDirectory(staging);
    }

    public async Task<Baseline> BuildAsync(OciImage image, string hex, string display, string platform, PullOptions options,
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
        catch (IOException e) when (e.HResult == Errno.ENOSPC)
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

    /// <summary>
    /// Bytes the tree needs on ext4 (4 KiB blocks per file and directory) and its inode count.
    /// Symlinks are counted, never followed (an image may hold a link to "/").
    /// </summary>
    internal static long MeasureTree(string root, out long inodes)
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

    private static void TryDeleteFile(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
