using Microagent.Errors;
using Microagent.Kernels;

namespace Microagent.Images;

/// <summary>What <see cref="ImageStore.Tag"/> did.</summary>
/// <param name="Source">The name or digest it was given.</param>
/// <param name="Target">The new name (normalised).</param>
/// <param name="Digest">The manifest digest both now name.</param>
/// <param name="Platform">The baseline's platform.</param>
public sealed record ImageTagResult(string Source, string Target, string Digest, string Platform);

public sealed partial class ImageStore
{
    /// <summary>
    /// The baseline <paramref name="imageRef"/> would use if it is already built, else null; reads local files only (no
    /// network, no writes): what a dry run reports.
    /// </summary>
    public Baseline? FindCached(string? imageRef, string? architecture = null)
    {
        var source = ImageSource.Parse(imageRef);
        string arch = Platforms.Normalize(architecture);
        if (source is ImageSource.Layout l)
        {
            try { return TryLoad(OciLayout.Open(l.Path).Resolve(l.Tag, arch).ManifestDigest[7..], source.Display); }
            catch (MicroagentException) { return null; }
        }
        return _refs.Find(source.Display, "linux/" + arch) is { } known ? TryLoad(known.ManifestDigest[7..], source.Display) : null;
    }

    /// <summary>
    /// Gives the cached image <paramref name="source"/> (a name, digest or digest prefix, as <see cref="Inspect"/> takes) the
    /// extra name <paramref name="target"/>, a registry-style reference (like <c>docker tag</c>; nothing is pushed). An
    /// existing <paramref name="target"/> of the same platform is moved to the new image.
    /// </summary>
    public ImageTagResult Tag(string source, string target, string? architecture = null)
    {
        var info = Inspect(source, architecture);
        if (ImageSource.Parse(target) is not ImageSource.Registry r)
            throw new MicroagentException(ErrorKind.Invalid, $"`{target}` is not a name an image can be tagged with",
                "give a reference like myimage:1 or 127.0.0.1:5000/team/tool:dev (oci: and docker-archive: are sources, not names)") { Field = "target" };
        string display = r.Display;
        _refs.Set(display, info.Baseline.Platform, info.Baseline.ManifestDigest);
        return new ImageTagResult(source, display, info.Baseline.ManifestDigest, info.Baseline.Platform);
    }

    /// <summary>
    /// <see cref="Prune"/> with every unused baseline, then the pulled content (manifests, configs, layer blobs) too: the next
    /// run of an image pulls it again. Baselines a workspace disk uses are kept, and so is the content they came from.
    /// </summary>
    public PruneResult Purge()
    {
        var pruned = Prune(all: true);
        long reclaimed = pruned.ReclaimedBytes;
        if (pruned.KeptInUse.Count == 0 && Directory.Exists(ContentDir))
        {
            using (_refs.Lock())
            {
                foreach (string f in Directory.EnumerateFiles(ContentDir, "*", SearchOption.AllDirectories)) reclaimed += new FileInfo(f).Length;
                KernelStore.TryDeleteDirectory(ContentDir);
            }
        }
        return pruned with { ReclaimedBytes = reclaimed };
    }
}
