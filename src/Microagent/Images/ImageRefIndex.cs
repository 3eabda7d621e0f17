using System.Text.Json;
using Microagent.Tools;

namespace Microagent.Images;

/// <summary>
/// The image names (<c>images/refs.json</c>): reference + platform → manifest digest. Changes are made under
/// <see cref="Lock"/> (<c>images/refs.lock</c>) and written atomically; an unreadable file reads as empty.
/// </summary>
internal sealed class ImageRefIndex(string imagesDir)
{
    private readonly string _path = Path.Combine(imagesDir, "refs.json");
    private readonly string _lockPath = Path.Combine(imagesDir, "refs.lock");

    /// <summary>Takes the index lock (read → change → save must hold it).</summary>
    public FileLock Lock() => FileLock.AcquireAsync(_lockPath).GetAwaiter().GetResult();

    public ImageRefRecord? Find(string display, string platform)
        => Load().Refs.FirstOrDefault(r => r.Reference == display && r.Platform == platform);

    public void Set(string display, string platform, string digest)
    {
        if (Find(display, platform) is { } r && r.ManifestDigest == digest) return;
        using var _ = Lock();
        var refs = Load();
        refs.Refs.RemoveAll(x => x.Reference == display && x.Platform == platform);
        refs.Refs.Add(new ImageRefRecord(display, platform, digest, DateTimeOffset.UtcNow));
        Save(refs);
    }

    public ImageRefs Load()
    {
        try
        {
            return File.Exists(_path) ? JsonSerializer.Deserialize(File.ReadAllBytes(_path), ImageJsonContext.Default.ImageRefs) ?? new ImageRefs([]) : new ImageRefs([]);
        }
        catch (JsonException)
        {
            return new ImageRefs([]);
        }
    }

    public void Save(ImageRefs refs)
        => StatePaths.WriteAtomic(_path, JsonSerializer.SerializeToUtf8Bytes(refs, ImageJsonContext.Default.ImageRefs));
}
