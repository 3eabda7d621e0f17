using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Models;

/// <summary>One model in the store's index (<c>models/index.json</c>).</summary>
/// <param name="Ref">The reference as indexed (<see cref="ModelReference.Canonical"/>).</param>
/// <param name="ResolvedRef">Where it came from: the URL pulled (no token), or the imported file's path.</param>
/// <param name="Sha256">Digest of the file (<c>sha256:HEX</c>).</param>
/// <param name="Size">Bytes.</param>
/// <param name="Path">The blob in the store.</param>
/// <param name="PulledAt">When it was pulled or imported.</param>
/// <param name="LastUsed">When a runner last started on it.</param>
public sealed record ModelRecord(string Ref, string ResolvedRef, string Sha256, long Size, string Path, DateTimeOffset PulledAt, DateTimeOffset LastUsed);

/// <summary>What <see cref="ModelStore.PruneAsync"/> removed.</summary>
/// <param name="Removed">Blobs deleted (no index entry named them, or partial downloads).</param>
/// <param name="Bytes">Bytes freed.</param>
public sealed record ModelPruneResult(IReadOnlyList<string> Removed, long Bytes);

/// <summary>Options of <see cref="ModelStore.PullAsync"/>.</summary>
public sealed record ModelPullOptions
{
    /// <summary>Bearer token; null = <c>$HF_TOKEN</c>, else <c>$HUGGING_FACE_HUB_TOKEN</c>, else none. Never logged.</summary>
    public string? Token { get; init; }
    /// <summary>Pull again even when the reference is in the store.</summary>
    public bool Force { get; init; }
    /// <summary>Phase messages.</summary>
    public IProgress<string>? Progress { get; init; }
    /// <summary>The Hugging Face endpoint; null = <see cref="ModelReference.Endpoint"/> (<c>$MICROAGENT_HF_ENDPOINT</c> or huggingface.co).</summary>
    public string? Endpoint { get; init; }
}

/// <summary>
/// The model store (docs/ARCHITECTURE.md "Model runner"): GGUF blobs under <c>&lt;state&gt;/models/blobs/sha256-HEX.gguf</c>
/// and an index. A pull streams to a partial file while hashing, checks the GGUF magic (and the server's sha256 when it
/// names one), then renames it into place, so an interrupted pull leaves no entry (<see cref="PruneAsync"/> removes its partial file).
/// Index changes hold <c>models/index.lock</c>.
/// </summary>
public sealed class ModelStore
{
    private static readonly byte[] GgufMagic = "GGUF"u8.ToArray();
    private readonly StatePaths _paths;

    /// <summary>A store under <paramref name="paths"/>.</summary>
    public ModelStore(StatePaths? paths = null) => _paths = paths ?? new StatePaths();

    /// <summary><c>&lt;state&gt;/models</c>.</summary>
    public string Dir => Path.Combine(_paths.Root, "models");
    private string Blobs => Path.Combine(Dir, "blobs");
    private string IndexPath => Path.Combine(Dir, "index.json");
    private string LockPath => Path.Combine(Dir, "index.lock");

    /// <summary>Every indexed model, by reference.</summary>
    public IReadOnlyList<ModelRecord> List() => [.. ReadIndex().OrderBy(r => r.Ref, StringComparer.Ordinal)];

    /// <summary>The entry for <paramref name="reference"/> (a reference, or a digest <c>sha256:HEX</c> or its first 12+ hex digits); null when absent.</summary>
    public ModelRecord? Find(string reference)
    {
        var index = ReadIndex();
        if (LooksLikeDigest(reference, out string hex)) return index.FirstOrDefault(r => r.Sha256["sha256:".Length..].StartsWith(hex, StringComparison.Ordinal));
        string canonical = ModelReference.Parse(reference).Canonical;
        return index.FirstOrDefault(r => r.Ref == canonical && File.Exists(r.Path));
    }

    /// <summary>
    /// Makes <paramref name="reference"/> present: an hf ref is downloaded over HTTPS (HTTP only to a loopback endpoint), a local
    /// <c>.gguf</c> is copied in by digest. Present already (and not <see cref="ModelPullOptions.Force"/>): returns its entry.
    /// </summary>
    public async Task<ModelRecord> PullAsync(string reference, ModelPullOptions? options = null, CancellationToken ct = default)
    {
        options ??= new ModelPullOptions();
        var parsed = ModelReference.Parse(reference);
        if (!options.Force && Find(parsed.Canonical) is { } have) return have;
        StatePaths.EnsureDirectory(Blobs);
        string partial = Path.Combine(Blobs, $".partial-{Guid.NewGuid():N}");
        try
        {
            string resolved;
            (string Sha, long Size) got;
            if (parsed.IsLocal)
            {
                if (!File.Exists(parsed.LocalPath)) throw MicroagentException.NotFound($"no file {parsed.LocalPath}", "give the path of a .gguf file");
                options.Progress?.Report($"importing {parsed.LocalPath}");
                await using var src = new FileStream(parsed.LocalPath!, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
                got = await CopyHashingAsync(src, partial, null, ct).ConfigureAwait(false);
                resolved = parsed.LocalPath!;
            }
            else
            {
                var url = parsed.ResolveUrl(options.Endpoint ?? ModelReference.Endpoint());
                CheckScheme(url);
                options.Progress?.Report($"pulling {parsed.Canonical}");
                got = await DownloadAsync(url, Token(options), partial, ct).ConfigureAwait(false);
                resolved = url.ToString();
            }
            return await CommitAsync(parsed, resolved, partial, got, options.Progress, ct).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(partial);
        }
    }

    /// <summary>
    /// Imports a local <c>.gguf</c> reading only what <paramref name="access"/> allows (the path must resolve inside a root; the read goes
    /// through the pinned descriptor): the MCP server's form of a local pull.
    /// </summary>
    public async Task<ModelRecord> ImportAsync(string path, Access.HostAccess access, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(access);
        var parsed = ModelReference.Parse(Path.IsPathRooted(path) ? path : Path.Combine(access.WorkingDirectory, path));
        using var pinned = access.OpenSource(parsed.LocalPath!, "model");
        var canonical = ModelReference.Parse(pinned.RealPath);
        if (Find(canonical.Canonical) is { } have) return have;
        StatePaths.EnsureDirectory(Blobs);
        string partial = Path.Combine(Blobs, $".partial-{Guid.NewGuid():N}");
        try
        {
            (string Sha, long Size) got;
            await using (var src = pinned.OpenRead()) got = await CopyHashingAsync(src, partial, null, ct).ConfigureAwait(false);
            return await CommitAsync(canonical, pinned.RealPath, partial, got, null, ct).ConfigureAwait(false);
        }
        finally { File.Delete(partial); }
    }

    private async Task<ModelRecord> CommitAsync(ModelReference parsed, string resolved, string partial, (string Sha, long Size) got, IProgress<string>? progress, CancellationToken ct)
    {
        string blob = Path.Combine(Blobs, $"sha256-{got.Sha}.gguf");
        File.Move(partial, blob, overwrite: true);
        var now = DateTimeOffset.UtcNow;
        var record = new ModelRecord(parsed.Canonical, resolved, "sha256:" + got.Sha, got.Size, blob, now, now);
        await UpdateIndexAsync(index => [.. index.Where(r => r.Ref != record.Ref), record], ct).ConfigureAwait(false);
        progress?.Report($"stored {parsed.Canonical} ({got.Size} bytes, sha256:{got.Sha[..12]})");
        return record;
    }

    /// <summary>Removes the entry for <paramref name="reference"/> (and its blob when no other entry shares it); false when absent.</summary>
    public async Task<bool> DeleteAsync(string reference, CancellationToken ct = default)
    {
        var found = Find(reference) ?? ReadIndex().FirstOrDefault(r => r.Ref == ModelReference.Parse(reference).Canonical);
        if (found is null) return false;
        await UpdateIndexAsync(index => [.. index.Where(r => r.Ref != found.Ref)], ct).ConfigureAwait(false);
        if (!ReadIndex().Any(r => r.Path == found.Path)) File.Delete(found.Path);
        return true;
    }

    /// <summary>Removes blobs no entry names and partial downloads older than an hour (a pull in progress is younger).</summary>
    public async Task<ModelPruneResult> PruneAsync(CancellationToken ct = default)
    {
        var removed = new List<string>();
        long bytes = 0;
        if (!Directory.Exists(Blobs)) return new ModelPruneResult(removed, 0);
        using var held = await FileLock.AcquireAsync(LockPath, ct).ConfigureAwait(false);
        var named = ReadIndex().Select(r => r.Path).ToHashSet(StringComparer.Ordinal);
        foreach (string f in Directory.EnumerateFiles(Blobs))
        {
            var info = new FileInfo(f);
            bool partial = info.Name.StartsWith(".partial-", StringComparison.Ordinal);
            if (named.Contains(f) || (partial && info.LastWriteTimeUtc > DateTime.UtcNow.AddHours(-1))) continue;
            bytes += info.Length;
            info.Delete();
            removed.Add(f);
        }
        return new ModelPruneResult(removed, bytes);
    }

    /// <summary>Records that a runner started on <paramref name="record"/> now.</summary>
    internal Task TouchAsync(ModelRecord record, CancellationToken ct) =>
        UpdateIndexAsync(index => [.. index.Select(r => r.Ref == record.Ref ? r with { LastUsed = DateTimeOffset.UtcNow } : r)], ct);

    private static string? Token(ModelPullOptions options) =>
        options.Token is { Length: > 0 } t ? t
        : Environment.GetEnvironmentVariable("HF_TOKEN") is { Length: > 0 } h ? h
        : Environment.GetEnvironmentVariable("HUGGING_FACE_HUB_TOKEN") is { Length: > 0 } h2 ? h2 : null;

    /// <summary>HTTPS only; plain HTTP only to a loopback endpoint (the tests' server).</summary>
    private static void CheckScheme(Uri url)
    {
        if (url.Scheme == Uri.UriSchemeHttps) return;
        if (url.Scheme == Uri.UriSchemeHttp && (url.IsLoopback || (IPAddress.TryParse(url.Host, out var ip) && IPAddress.IsLoopback(ip)))) return;
        throw new MicroagentException(ErrorKind.Invalid, $"model endpoint {url.GetLeftPart(UriPartial.Authority)} is not HTTPS", $"set ${ModelReference.EndpointVariable} to an https:// URL (plain http only on loopback)");
    }

    private static async Task<(string Sha, long Size)> DownloadAsync(Uri url, string? token, string partial, CancellationToken ct)
    {
        // Redirects (to a CDN) are followed; HttpClient drops the Authorization header when a redirect leaves the host.
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 10 }) { Timeout = Timeout.InfiniteTimeSpan };
        using var req = new HttpRequestMessage(HttpMethod.Get, url);
        req.Headers.UserAgent.Add(new ProductInfoHeaderValue("microagent", "1"));
        if (token is not null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        HttpResponseMessage resp;
        try { resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false); }
        catch (HttpRequestException e)
        {
            throw MicroagentException.Transient($"cannot reach {url.GetLeftPart(UriPartial.Authority)}: {e.Message}", "check the network and retry", e);
        }
        using (resp)
        {
            if (resp.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                throw new MicroagentException(ErrorKind.PolicyDenied, $"{url} answered {(int)resp.StatusCode}: the repository needs a token or the token lacks access", "pass --token or set HF_TOKEN");
            if (resp.StatusCode == HttpStatusCode.NotFound) throw MicroagentException.NotFound($"{url} answered 404", "check the organisation, repository, revision and file name");
            if (!resp.IsSuccessStatusCode)
                throw new MicroagentException((int)resp.StatusCode >= 500 ? ErrorKind.Transient : ErrorKind.Permanent, $"{url} answered {(int)resp.StatusCode}", "retry later");
            string? expected = resp.Headers.TryGetValues("X-Linked-ETag", out var tags) ? tags.FirstOrDefault()?.Trim('"').ToLowerInvariant() : null;
            await using var body = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            return await CopyHashingAsync(body, partial, expected is { Length: 64 } && expected.All(Uri.IsHexDigit) ? expected : null, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Streams <paramref name="source"/> to <paramref name="partial"/> (0600) while hashing; checks the GGUF magic and <paramref name="expectedSha"/>.</summary>
    private static async Task<(string Sha, long Size)> CopyHashingAsync(Stream source, string partial, string? expectedSha, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long size = 0;
        byte[] head = new byte[4];
        int headLen = 0;
        await using (var dst = new FileStream(partial, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.Asynchronous, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            byte[] buffer = new byte[1 << 16];
            int n;
            while ((n = await source.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                for (int i = 0; i < n && headLen < 4; i++) head[headLen++] = buffer[i];
                hash.AppendData(buffer, 0, n);
                await dst.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                size += n;
            }
            await dst.FlushAsync(ct).ConfigureAwait(false);
        }
        if (headLen < 4 || !head.AsSpan().SequenceEqual(GgufMagic))
            throw MicroagentException.Invalid("the file is not a GGUF model (no GGUF magic)", "give a .gguf file made for llama.cpp");
        string sha = Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
        if (expectedSha is not null && expectedSha != sha)
            throw MicroagentException.Transient($"the download's sha256 {sha[..12]}… does not match the server's {expectedSha[..12]}…", "retry the pull");
        return (sha, size);
    }

    private static bool LooksLikeDigest(string s, out string hex)
    {
        hex = s.StartsWith("sha256:", StringComparison.Ordinal) ? s[7..] : s;
        return hex.Length is >= 12 and <= 64 && hex.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));
    }

    private List<ModelRecord> ReadIndex()
    {
        if (!File.Exists(IndexPath)) return [];
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(IndexPath), ModelJson.Default.ListModelRecord) ?? []; }
        catch (JsonException e) { throw MicroagentException.Permanent($"the model index {IndexPath} is corrupt: {e.Message}", "remove it and pull the models again", e); }
    }

    private async Task UpdateIndexAsync(Func<List<ModelRecord>, List<ModelRecord>> change, CancellationToken ct)
    {
        StatePaths.EnsureDirectory(Dir);
        using var held = await FileLock.AcquireAsync(LockPath, ct).ConfigureAwait(false);
        StatePaths.WriteAtomic(IndexPath, JsonSerializer.SerializeToUtf8Bytes(change(ReadIndex()), ModelJson.Default.ListModelRecord));
    }
}

/// <summary>Source-generated JSON for the model store and runner registry.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(List<ModelRecord>))]
[JsonSerializable(typeof(ModelRunnerRecord))]
internal sealed partial class ModelJson : JsonSerializerContext;
