using System.Security.Cryptography;
using System.Text.Json;
using Microagent.Errors;

namespace Microagent.Images;

/// <summary>A content descriptor (image-spec <c>descriptor.md</c>).</summary>
internal sealed record OciDescriptor(string MediaType, string Digest, long Size, IReadOnlyDictionary<string, string> Annotations,
    string? Architecture, string? Os)
{
    /// <summary>Hex part of a <c>sha256:</c> digest.</summary>
    public string Hex => Digest["sha256:".Length..];
}

/// <summary>An image resolved from a layout: its manifest, config, and layers in application order.</summary>
internal sealed record OciImage(string ManifestDigest, OciDescriptor ConfigDescriptor, IReadOnlyList<OciDescriptor> Layers,
    IReadOnlyList<string> DiffIds, ImageConfig Config);

/// <summary>Platform names as OCI uses them (image-spec <c>image-index.md</c>, Go's GOARCH values).</summary>
internal static class Platforms
{
    /// <summary>Workspaces are x86_64 VMs: the architecture images are pulled for unless told otherwise.</summary>
    public const string DefaultArchitecture = "amd64";

    /// <summary>The host's architecture in OCI terms.</summary>
    public static string Host => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.S390x => "s390x",
        System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
        var a => a.ToString().ToLowerInvariant(),
    };

    /// <summary>Normalises user input (<c>x86_64</c> → <c>amd64</c>, <c>aarch64</c> → <c>arm64</c>, <c>linux/arm64</c> → <c>arm64</c>).</summary>
    public static string Normalize(string? arch)
    {
        if (string.IsNullOrWhiteSpace(arch)) return Host;
        string a = arch.Trim().ToLowerInvariant();
        if (a.StartsWith("linux/", StringComparison.Ordinal)) a = a["linux/".Length..];
        return a switch { "x86_64" or "x86-64" => "amd64", "aarch64" => "arm64", _ => a };
    }
}

/// <summary>
/// Reads an OCI image layout directory (image-spec <c>image-layout.md</c>): <c>oci-layout</c>,
/// <c>index.json</c>, <c>blobs/sha256/&lt;hex&gt;</c>. Every blob read is checked against its
/// descriptor's digest and size; only sha256 digests are accepted.
/// </summary>
internal sealed class OciLayout
{
    private const long MaxJsonBlob = 4 << 20;

    private OciLayout(string root) => Root = root;

    /// <summary>The layout directory.</summary>
    public string Root { get; }

    /// <summary>Opens a layout directory, checking <c>oci-layout</c>.</summary>
    public static OciLayout Open(string dir)
    {
        dir = Path.GetFullPath(dir);
        string marker = Path.Combine(dir, "oci-layout");
        if (!Directory.Exists(dir) || !File.Exists(marker) || !File.Exists(Path.Combine(dir, "index.json")))
            throw MicroagentException.NotFound($"{dir} is not an OCI image layout (no oci-layout or index.json)",
                "point at a directory produced by `skopeo copy ... oci:DIR`, `docker buildx --output type=oci` or scripts/build-default-image.sh");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(marker));
            string? v = doc.RootElement.TryGetProperty("imageLayoutVersion", out var e) ? e.GetString() : null;
            if (v is null || !v.StartsWith("1.", StringComparison.Ordinal))
                throw MicroagentException.Unsupported($"{marker}: unsupported imageLayoutVersion `{v}`", "use an OCI layout version 1.x");
        }
        catch (JsonException e)
        {
            throw Bad($"{marker} is not valid JSON: {e.Message}");
        }
        return new OciLayout(dir);
    }

    /// <summary>Path of a blob (not checked).</summary>
    public string BlobPath(OciDescriptor d) => Path.Combine(Root, "blobs", "sha256", d.Hex);

    /// <summary>
    /// Resolves the image: with <paramref name="tag"/>, the index entry annotated with that
    /// <c>org.opencontainers.image.ref.name</c>; without, the only entry, else the one tagged
    /// <c>latest</c>, else the linux/amd64 one. Nested indexes pick linux/amd64.
    /// </summary>
    public OciImage Resolve(string? tag = null, string architecture = Platforms.DefaultArchitecture)
    {
        byte[] indexBytes = File.ReadAllBytes(Path.Combine(Root, "index.json"));
        var manifests = ParseIndex(indexBytes, "index.json");
        OciDescriptor chosen;
        if (tag is not null)
        {
            chosen = manifests.FirstOrDefault(m => m.Annotations.TryGetValue(OciMediaTypes.RefNameAnnotation, out var r) && r == tag)
                ?? throw MicroagentException.NotFound($"tag `{tag}` not found in {Root}/index.json",
                    $"available: {string.Join(", ", manifests.Select(m => m.Annotations.GetValueOrDefault(OciMediaTypes.RefNameAnnotation)).Where(t => t is not null).DefaultIfEmpty("(no tags)"))}");
        }
        else if (manifests.Count == 1) chosen = manifests[0];
        else
            chosen = manifests.FirstOrDefault(m => m.Annotations.GetValueOrDefault(OciMediaTypes.RefNameAnnotation) == "latest")
                ?? PickPlatform(manifests, "index.json", architecture);

        for (int depth = 0; OciMediaTypes.IsIndex(chosen.MediaType); depth++)
        {
            if (depth > 4) throw Bad("image indexes nest too deeply");
            chosen = PickPlatform(ParseIndex(ReadJsonBlob(chosen), chosen.Digest), chosen.Digest, architecture);
        }
        if (!OciMediaTypes.IsManifest(chosen.MediaType))
            throw MicroagentException.Unsupported($"manifest {chosen.Digest} has unsupported media type `{chosen.MediaType}`",
                "use an OCI or Docker schema 2 image");
        return ReadImage(chosen, architecture);
    }

    /// <summary>Opens a blob for streaming; the caller verifies with <see cref="VerifyingStream"/>.</summary>
    public Stream OpenBlob(OciDescriptor d)
    {
        string path = BlobPath(d);
        if (!File.Exists(path))
            throw MicroagentException.NotFound($"blob {d.Digest} is missing from {Root}", "re-export or re-pull the image");
        var info = new FileInfo(path);
        if (info.Length != d.Size)
            throw Bad($"blob {d.Digest} is {info.Length} bytes, its descriptor says {d.Size}");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    /// <summary>Reads a small JSON blob whole, checking size and digest.</summary>
    public byte[] ReadJsonBlob(OciDescriptor d)
    {
        if (d.Size > MaxJsonBlob) throw Bad($"blob {d.Digest} is {d.Size} bytes, too large for a manifest or config");
        using var s = OpenBlob(d);
        byte[] data = new byte[d.Size];
        s.ReadExactly(data);
        string actual = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));
        if (actual != d.Digest) throw Bad($"blob {d.Digest} has digest {actual}: the layout is corrupt");
        return data;
    }

    /// <summary>Reads the manifest <paramref name="manifestDesc"/> and its config from this layout's blobs; the config must be linux/<paramref name="architecture"/>.</summary>
    public OciImage ReadImage(OciDescriptor manifestDesc, string architecture = Platforms.DefaultArchitecture)
    {
        byte[] bytes = ReadJsonBlob(manifestDesc);
        OciDescriptor config;
        var layers = new List<OciDescriptor>();
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.TryGetProperty("schemaVersion", out var sv) && sv.GetInt32() != 2)
                throw MicroagentException.Unsupported($"manifest {manifestDesc.Digest} has schemaVersion {sv.GetInt32()}", "use a schema 2 image");
            config = ParseDescriptor(root.GetProperty("config"), manifestDesc.Digest);
            if (root.TryGetProperty("layers", out var ls))
                foreach (var l in ls.EnumerateArray()) layers.Add(ParseDescriptor(l, manifestDesc.Digest));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw Bad($"manifest {manifestDesc.Digest} is malformed: {e.Message}");
        }

        byte[] configBytes = ReadJsonBlob(config);
        var diffIds = new List<string>();
        ImageConfig imageConfig;
        try
        {
            using var doc = JsonDocument.Parse(configBytes);
            var root = doc.RootElement;
            string? os = root.TryGetProperty("os", out var o) ? o.GetString() : null;
            string? arch = root.TryGetProperty("architecture", out var a) ? a.GetString() : null;
            if ((os is not null && os != "linux") || (arch is not null && arch != architecture))
                throw MicroagentException.Unsupported($"image is {os}/{arch}, not linux/{architecture}", "use an image built for that platform, or choose the platform with --arch");
            if (root.TryGetProperty("rootfs", out var rootfs) && rootfs.TryGetProperty("diff_ids", out var ids))
                foreach (var id in ids.EnumerateArray()) diffIds.Add(id.GetString() ?? "");
            var c = root.TryGetProperty("config", out var ce) && ce.ValueKind == JsonValueKind.Object ? ce : default;
            imageConfig = new ImageConfig(
                Strings(c, "Env") ?? [],
                Strings(c, "Entrypoint"),
                Strings(c, "Cmd"),
                c.ValueKind == JsonValueKind.Object && c.TryGetProperty("WorkingDir", out var wd) && wd.GetString() is { Length: > 0 } w ? w : null,
                c.ValueKind == JsonValueKind.Object && c.TryGetProperty("User", out var u) && u.GetString() is { Length: > 0 } us ? us : null);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw Bad($"image config {config.Digest} is malformed: {e.Message}");
        }
        if (diffIds.Count != 0 && diffIds.Count != layers.Count)
            throw Bad($"image config lists {diffIds.Count} diff_ids for {layers.Count} layers");
        return new OciImage(manifestDesc.Digest, config, layers, diffIds, imageConfig);
    }

    private static string[]? Strings(JsonElement obj, string name)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out var e) || e.ValueKind != JsonValueKind.Array) return null;
        return e.EnumerateArray().Select(x => x.GetString() ?? "").ToArray();
    }

    private static List<OciDescriptor> ParseIndex(byte[] bytes, string what)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var list = new List<OciDescriptor>();
            if (doc.RootElement.TryGetProperty("manifests", out var ms))
                foreach (var m in ms.EnumerateArray()) list.Add(ParseDescriptor(m, what));
            if (list.Count == 0) throw Bad($"{what} lists no manifests");
            return list;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw Bad($"{what} is malformed: {e.Message}");
        }
    }

    /// <summary>Parses one descriptor object.</summary>
    public static OciDescriptor ParseDescriptor(JsonElement e, string where)
    {
        string mediaType = e.TryGetProperty("mediaType", out var mt) ? mt.GetString() ?? "" : "";
        string digest = e.GetProperty("digest").GetString() ?? "";
        long size = e.GetProperty("size").GetInt64();
        if (!digest.StartsWith("sha256:", StringComparison.Ordinal))
            throw MicroagentException.Unsupported($"{where}: digest `{digest}` is not sha256", "use sha256 digests");
        string hex = digest["sha256:".Length..];
        if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigitLower))
            throw Bad($"{where}: malformed digest `{digest}`");
        if (size < 0) throw Bad($"{where}: negative size for {digest}");
        var ann = new Dictionary<string, string>(StringComparer.Ordinal);
        if (e.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object)
            foreach (var p in a.EnumerateObject()) ann[p.Name] = p.Value.GetString() ?? "";
        string? arch = null, os = null;
        if (e.TryGetProperty("platform", out var pl) && pl.ValueKind == JsonValueKind.Object)
        {
            arch = pl.TryGetProperty("architecture", out var ar) ? ar.GetString() : null;
            os = pl.TryGetProperty("os", out var o) ? o.GetString() : null;
        }
        return new OciDescriptor(mediaType, digest, size, ann, arch, os);
    }

    /// <summary>The linux/<paramref name="architecture"/> entry of an index (an entry without platform when it is the only one).</summary>
    public static OciDescriptor PickPlatform(IReadOnlyList<OciDescriptor> manifests, string where, string architecture = Platforms.DefaultArchitecture)
        => manifests.FirstOrDefault(m => m.Os == "linux" && m.Architecture == architecture)
            ?? (manifests.Count == 1 && manifests[0].Os is null ? manifests[0] : null)
            ?? throw MicroagentException.NotFound($"{where} has no linux/{architecture} image (it has {string.Join(", ", manifests.Select(m => $"{m.Os}/{m.Architecture}"))})",
                "choose one of those platforms with --arch, or use an image built for linux/" + architecture);

    /// <summary>Descriptors listed by an index or manifest list document.</summary>
    public static List<OciDescriptor> ParseIndexDocument(byte[] bytes, string what) => ParseIndex(bytes, what);

    internal static MicroagentException Bad(string message)
        => MicroagentException.Invalid(message, "re-export or re-pull the image; the layout is damaged or not an OCI image");
}

/// <summary>
/// Read-only stream that hashes what passes through and, at end of stream, checks the total size
/// and sha256 against the expected descriptor, throwing an <see cref="ErrorKind.Invalid"/> error on mismatch.
/// </summary>
internal sealed class VerifyingStream : Stream
{
    private readonly Stream _inner;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly string _expectedDigest;
    private readonly long _expectedSize;
    private long _read;
    private bool _verified;

    /// <summary>Wraps <paramref name="inner"/>; null expectations skip that check.</summary>
    public VerifyingStream(Stream inner, string expectedDigest, long expectedSize = -1)
    {
        _inner = inner;
        _expectedDigest = expectedDigest;
        _expectedSize = expectedSize;
    }

    /// <summary>Reads the rest of the stream so the check runs.</summary>
    public void DrainAndVerify()
    {
        byte[] buf = new byte[1 << 16];
        while (Read(buf, 0, buf.Length) > 0) { }
        Verify();
    }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override int Read(Span<byte> buffer)
    {
        int n = _inner.Read(buffer);
        if (n > 0)
        {
            _hash.AppendData(buffer[..n]);
            _read += n;
            if (_expectedSize >= 0 && _read > _expectedSize)
                throw OciLayout.Bad($"content of {_expectedDigest} is longer than its descriptor's {_expectedSize} bytes");
        }
        else if (buffer.Length > 0) Verify();
        return n;
    }

    private void Verify()
    {
        if (_verified) return;
        _verified = true;
        if (_expectedSize >= 0 && _read != _expectedSize)
            throw OciLayout.Bad($"content of {_expectedDigest} is {_read} bytes, expected {_expectedSize}");
        string actual = "sha256:" + Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (actual != _expectedDigest)
            throw OciLayout.Bad($"content digest is {actual}, expected {_expectedDigest}");
    }

    /// <inheritdoc />
    public override bool CanRead => true;
    /// <inheritdoc />
    public override bool CanSeek => false;
    /// <inheritdoc />
    public override bool CanWrite => false;
    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();
    /// <inheritdoc />
    public override long Position { get => _read; set => throw new NotSupportedException(); }
    /// <inheritdoc />
    public override void Flush() { }
    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();
    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) { _inner.Dispose(); _hash.Dispose(); }
        base.Dispose(disposing);
    }
}
