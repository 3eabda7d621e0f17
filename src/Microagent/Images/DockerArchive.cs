using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;

namespace Microagent.Images;

/// <summary>
/// Imports a <c>docker save</c> tarball (moby <c>image/tarexport</c>: <c>manifest.json</c> =
/// <c>[{"Config":..., "RepoTags":[...], "Layers":[...]}]</c>, layers as tar files, plain or
/// compressed; Docker 25+ stores them under <c>blobs/sha256/</c>) into an OCI layout as an OCI
/// manifest, and returns that manifest's descriptor. The first image of the archive is used.
/// </summary>
internal static class DockerArchive
{
    private const long MaxJson = 4 << 20;
    private const int MaxEntries = 100_000;

    /// <summary>Imports <paramref name="archivePath"/> into <paramref name="content"/>, staging files under <paramref name="tmpRoot"/>.</summary>
    public static OciDescriptor Import(string archivePath, OciLayout content, string tmpRoot, CancellationToken ct)
    {
        if (!File.Exists(archivePath))
            throw MicroagentException.NotFound($"docker archive {archivePath} does not exist", "give the path of a `docker save` tarball");
        StatePaths.EnsureDirectory(tmpRoot);
        string staging = Path.Combine(tmpRoot, $"docker-archive-{Guid.NewGuid():N}");
        StatePaths.EnsureDirectory(staging);
        try
        {
            // name in archive -> (staged file, sha256 digest, size); symlinked names resolve to their target's entry.
            var files = new Dictionary<string, (string Path, string Digest, long Size)>(StringComparer.Ordinal);
            var links = new Dictionary<string, string>(StringComparer.Ordinal);
            byte[]? manifestJson = null;
            using (var fs = File.OpenRead(archivePath))
            using (var reader = new TarReader(fs))
            {
                TarEntry? e;
                int count = 0;
                while ((e = Next(reader, archivePath)) is not null)
                {
                    ct.ThrowIfCancellationRequested();
                    if (++count > MaxEntries) throw Bad(archivePath, "too many entries");
                    string name = Clean(e.Name);
                    if (e.EntryType is TarEntryType.SymbolicLink)
                    {
                        string dir = name.Contains('/') ? name[..name.LastIndexOf('/')] : "";
                        links[name] = Clean(e.LinkName.StartsWith('/') ? e.LinkName : (dir.Length == 0 ? e.LinkName : dir + "/" + e.LinkName));
                        continue;
                    }
                    if (e.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || e.DataStream is null) continue;
                    if (name == "manifest.json")
                    {
                        if (e.Length > MaxJson) throw Bad(archivePath, "manifest.json is too large");
                        using var ms = new MemoryStream();
                        e.DataStream.CopyTo(ms);
                        manifestJson = ms.ToArray();
                        continue;
                    }
                    string staged = Path.Combine(staging, files.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    using (var outFs = new FileStream(staged, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0))
                    {
                        byte[] buf = new byte[1 << 17];
                        int n;
                        while ((n = e.DataStream.Read(buf)) > 0)
                        {
                            hash.AppendData(buf, 0, n);
                            outFs.Write(buf, 0, n);
                        }
                    }
                    files[name] = (staged, "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset()), new FileInfo(staged).Length);
                }
            }
            if (manifestJson is null) throw Bad(archivePath, "it has no manifest.json (is it a `docker save` tarball?)");

            (string Path, string Digest, long Size) Find(string name)
            {
                name = Clean(name);
                for (int i = 0; i < 16 && links.TryGetValue(name, out var target); i++) name = target;
                return files.TryGetValue(name, out var f) ? f : throw Bad(archivePath, $"manifest.json names `{name}`, which is not in the archive");
            }

            JsonNode? first;
            try { first = JsonNode.Parse(manifestJson)?.AsArray().FirstOrDefault(); }
            catch (Exception e) when (e is JsonException or InvalidOperationException) { throw Bad(archivePath, "manifest.json is not valid JSON"); }
            if (first?["Config"]?.GetValue<string>() is not { } configName || first["Layers"] is not JsonArray layerNames)
                throw Bad(archivePath, "manifest.json has no image with Config and Layers");

            var config = Find(configName);
            if (config.Size > MaxJson) throw Bad(archivePath, "the image config is too large");
            Move(content, config);
            var layers = new JsonArray();
            foreach (var ln in layerNames)
            {
                var layer = Find(ln?.GetValue<string>() ?? "");
                string mediaType = Sniff(layer.Path);
                Move(content, layer);
                layers.Add((JsonNode)new JsonObject { ["mediaType"] = mediaType, ["digest"] = layer.Digest, ["size"] = layer.Size });
            }
            var manifest = new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = OciMediaTypes.ImageManifest,
                ["config"] = new JsonObject { ["mediaType"] = OciMediaTypes.ImageConfig, ["digest"] = config.Digest, ["size"] = config.Size },
                ["layers"] = layers,
            };
            byte[] bytes = Encoding.UTF8.GetBytes(manifest.ToJsonString());
            string digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
            ImageStore.WriteBlob(content, digest, bytes);
            return new OciDescriptor(OciMediaTypes.ImageManifest, digest, bytes.Length, new Dictionary<string, string>(), null, null);
        }
        finally
        {
            Kernels.KernelStore.TryDeleteDirectory(staging);
        }
    }

    /// <summary>Layer media type from the first bytes: gzip (1f 8b), zstd (28 b5 2f fd), else plain tar.</summary>
    private static string Sniff(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var fs = File.OpenRead(path);
        int n = fs.Read(magic);
        if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return OciMediaTypes.LayerTarGzip;
        if (n >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) return OciMediaTypes.LayerTarZstd;
        return OciMediaTypes.LayerTar;
    }

    private static void Move(OciLayout content, (string Path, string Digest, long Size) f)
    {
        string dest = Path.Combine(content.Root, "blobs", "sha256", f.Digest[7..]);
        if (File.Exists(dest)) return;
        if (File.Exists(f.Path)) File.Move(f.Path, dest);
        else throw new IOException($"staged file for {f.Digest} vanished");
    }

    private static string Clean(string name) => string.Join('/', name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != "."));

    private static TarEntry? Next(TarReader r, string path)
    {
        try { return r.GetNextEntry(copyData: false); }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
        {
            throw Bad(path, $"it is not a valid tar archive ({e.Message})");
        }
    }

    private static MicroagentException Bad(string path, string why)
        => MicroagentException.Invalid($"docker archive {path}: {why}", "produce it with `docker save IMAGE -o FILE.tar`");
}
