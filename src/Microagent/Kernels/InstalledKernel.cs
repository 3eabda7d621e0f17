using System.Text.Json.Serialization;

namespace Microagent.Kernels;

/// <summary>
/// A kernel installed under <c>kernels/&lt;version&gt;/</c>: the image, its modules directory, and
/// the sha256 of the image recorded at install time (checked before every boot).
/// </summary>
public sealed record InstalledKernel(string Version, string KernelPath, string ModulesDir, string Sha256, DateTimeOffset InstalledAt, string Source);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(InstalledKernel))]
internal sealed partial class KernelJsonContext : JsonSerializerContext;
