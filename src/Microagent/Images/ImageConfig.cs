using System.Text.Json.Serialization;

namespace Microagent.Images;

/// <summary>The runtime part of an OCI image config (image-spec <c>config.md</c>, field <c>config</c>).</summary>
public sealed record ImageConfig(string[] Env, string[]? Entrypoint, string[]? Cmd, string? WorkingDir, string? User);

/// <summary>A sealed ext4 root disk built from one image manifest; read-only, shared by all workspaces of that image.</summary>
public sealed record Baseline(string ImageRef, string ManifestDigest, string Path, long SizeBytes, ImageConfig Config)
{
    /// <summary>os/architecture the manifest is for.</summary>
    public string Platform { get; init; } = "linux/amd64";
    /// <summary>When the baseline was built.</summary>
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>Number of layers applied.</summary>
    public int LayerCount { get; init; }
    /// <summary>Bytes of the applied tree (before headroom).</summary>
    public long ContentBytes { get; init; }
    /// <summary>Sum of the (compressed) layer blob sizes.</summary>
    public long CompressedBytes { get; init; }
}

/// <summary>A name pointing at a baseline in the cache (<c>images/refs.json</c>).</summary>
internal sealed record ImageRefRecord(string Reference, string Platform, string ManifestDigest, DateTimeOffset UpdatedAt);

/// <summary>All names known to the cache.</summary>
internal sealed record ImageRefs(List<ImageRefRecord> Refs);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(Baseline))]
[JsonSerializable(typeof(ImageRefs))]
internal sealed partial class ImageJsonContext : JsonSerializerContext;
