using Microagent.Kernels;

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

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (no synchronisation context hop).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => report(value);
}
