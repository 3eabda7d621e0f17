using System.Globalization;
using System.IO.Compression;
using Microagent.Errors;
using Microagent.Images;
using Microagent.Kernels;
using Microagent.Tools;

namespace Microagent.Volumes;

/// <summary>
/// Bundles (docs/ARCHITECTURE.md "Images and disks"): a <c>.tar</c> or <c>.tar.gz</c> is unpacked with the image layer code
/// (<see cref="LayerApplier"/>: no entry escapes, ownership and modes kept) into a staging tree and sealed by <c>mke2fs -d</c>
/// into <c>&lt;state&gt;/bundles/&lt;sha256&gt;.ext4</c>, keyed by the bundle file's sha256: the same bundle is built once,
/// attached read-only as it is, or under a per-workspace qcow2 overlay when read-write. A cached image never changes.
/// </summary>
internal sealed class BundleCache(StatePaths paths)
{
    /// <summary>Free space added to a bundle's filesystem, so a read-write attachment has room to write.</summary>
    private const long HeadroomBytes = 256L << 20;

    public string Dir => Path.Combine(paths.Root, "bundles");

    /// <summary>The cached image of a bundle whose sha256 is <paramref name="sha256"/> (it may not exist yet).</summary>
    public string PathOf(string sha256) => Path.Combine(Dir, sha256 + ".ext4");

    /// <summary>The sealed ext4 image of the bundle at <paramref name="bundlePath"/>, built when it is not cached; and its sha256.</summary>
    public async Task<(string Path, string Sha256)> EnsureAsync(string bundlePath, IProgress<string>? progress, CancellationToken ct)
    {
        if (!File.Exists(bundlePath))
            throw MicroagentException.NotFound($"bundle {bundlePath} does not exist", "give the path of a .tar or .tar.gz file") ;
        string sha = await Hashing.Sha256FileAsync(bundlePath, ct).ConfigureAwait(false);
        string final = PathOf(sha);
        if (File.Exists(final)) return (final, sha);
        StatePaths.EnsureDirectory(Dir);
        using var held = await FileLock.AcquireAsync(Path.Combine(paths.Root, "locks", $"bundle-{sha[..32]}.lock"), ct).ConfigureAwait(false);
        if (File.Exists(final)) return (final, sha);
        progress?.Report($"making an ext4 image of bundle {Path.GetFileName(bundlePath)}");
        StatePaths.EnsureDirectory(paths.Tmp);
        string staging = Path.Combine(paths.Tmp, $"bundle-{sha[..12]}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(staging, (UnixFileMode)0b111_101_101);
        string tmp = Path.Combine(Dir, $".{sha}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            await Task.Run(() => Unpack(bundlePath, staging, ct), ct).ConfigureAwait(false);
            long content = BaselineBuilder.MeasureTree(staging, out long inodes);
            long size = (content + content / 4 + HeadroomBytes + (1 << 20) - 1) >> 20 << 20;
            await ExternalTool.RunAsync("mke2fs", "e2fsprogs",
                ["-q", "-t", "ext4", "-b", "4096", "-m", "0", "-N", Math.Max(inodes * 2, 16384).ToString(CultureInfo.InvariantCulture),
                 "-d", staging, "-E", "root_owner=0:0", "-F", tmp, $"{size >> 10}k"], ct).ConfigureAwait(false);
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(tmp, final, overwrite: true);
            return (final, sha);
        }
        finally
        {
            KernelStore.TryDeleteDirectory(staging);
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static void Unpack(string bundlePath, string staging, CancellationToken ct)
    {
        using var file = File.OpenRead(bundlePath);
        Span<byte> magic = stackalloc byte[2];
        bool gzip = file.Read(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b; // RFC 1952 §2.3.1 ID1 ID2
        file.Position = 0;
        using Stream tar = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        try { new LayerApplier(staging).Apply(tar, ct); }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw MicroagentException.Invalid($"{bundlePath} is not a readable tar{(gzip ? ".gz" : "")} bundle: {e.Message}",
                "make it with `tar -cf BUNDLE.tar -C DIR .` or `tar -czf BUNDLE.tar.gz -C DIR .`");
        }
    }
}
