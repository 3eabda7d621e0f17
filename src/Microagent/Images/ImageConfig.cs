using System.Text.Json.Serialization;

namespace Microagent.Images;

/// <summary>The runtime part of an OCI image config (image-spec <c>config.md</c>, field <c>config</c>).</summary>
public sealed record ImageConfig(string[] Env, string[]? Entrypoint, string[]? Cmd, string? WorkingDir, string? User);

/// <summary>A sealed ext4 root disk built from one image manifest; read-only, shared by all workspaces of that image.</summary>
public sealed record Baseline(string ImageRef, string ManifestDigest, string Path, long SizeBytes, ImageConfig Config);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(Baseline))]
internal sealed partial class ImageJsonContext : JsonSerializerContext;
