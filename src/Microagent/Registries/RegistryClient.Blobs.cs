using System.Net;
using System.Security.Cryptography;
using Microagent.Errors;
using Microagent.Images;

namespace Microagent.Registries;

internal sealed partial class RegistryClient
{
    /// <summary>Suffix of a blob that is still being downloaded (docs/ARCHITECTURE.md "Images and disks").</summary>
    public const string PartialSuffix = ".partial";

    /// <summary>
    /// Downloads blob <paramref name="blob"/> to <paramref name="destination"/>, verifying size and sha256. The bytes go to
    /// <c>DESTINATION.partial</c>, which survives an interrupted pull (a dropped connection, Ctrl-C, kill -9); the next attempt —
    /// a retry here or a later pull — hashes what it holds and asks only for the rest with an HTTP Range request
    /// (<see cref="BlobRange"/>). Invariant: <paramref name="destination"/> appears only by rename, after the whole blob matched
    /// its digest, so a partial file is never taken for a complete one. A partial file another process is writing is left alone
    /// (this call then downloads into its own temp file). Returns the bytes fetched over the network.
    /// </summary>
    public async Task<long> DownloadBlobAsync(ImageReference image, OciDescriptor blob, string destination, IProgress<long>? bytesRead = null, CancellationToken ct = default)
    {
        var uri = new Uri(BaseUri(image.Registry), $"{image.Repository}/blobs/{blob.Digest}");
        string partial = destination + PartialSuffix;
        FileStream file;
        try { file = OpenPartial(partial); }
        catch (IOException)
        {
            partial = $"{destination}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp"; // another pull holds the shared partial file
            file = OpenPartial(partial);
        }
        bool privateFile = partial.EndsWith(".tmp", StringComparison.Ordinal);
        long fetched = 0;
        bool restarted = false;
        try
        {
            for (int attempt = 1; ; attempt++)
            {
                long reported = 0;
                try
                {
                    long have = file.Length;
                    if (have > blob.Size) { file.SetLength(0); have = 0; }
                    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    await HashPrefixAsync(file, have, hash, ct).ConfigureAwait(false);
                    if (have > 0) { bytesRead?.Report(have); reported += have; }
                    if (have < blob.Size)
                    {
                        using var resp = await SendAsync(image.Registry, Scope(image), () =>
                        {
                            var req = new HttpRequestMessage(HttpMethod.Get, uri);
                            if (have > 0) req.Headers.Range = BlobRange.From(have);
                            return req;
                        }, ct).ConfigureAwait(false);
                        if (have > 0 && resp.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
                            throw new IOException($"the registry refused the range {BlobRange.Describe(have)} of blob {blob.Digest}"); // retried from the start
                        await EnsureSuccess(resp, image.Registry, $"blob {blob.Digest}", ct).ConfigureAwait(false);
                        if (have > 0 && !(resp.StatusCode == HttpStatusCode.PartialContent && BlobRange.IsRest(resp.Content.Headers.ContentRange, have, blob.Size)))
                        {
                            // 200 (no range support) or another range: take the whole blob from the start.
                            file.SetLength(0);
                            bytesRead?.Report(-reported);
                            reported = 0;
                            have = 0;
                            hash.GetHashAndReset();
                        }
                        file.Seek(have, SeekOrigin.Begin);
                        await using var body = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                        byte[] buf = new byte[1 << 18];
                        long total = have;
                        int n;
                        while ((n = await body.ReadAsync(buf, ct).ConfigureAwait(false)) > 0)
                        {
                            total += n;
                            if (total > blob.Size)
                                throw MicroagentException.Invalid($"blob {blob.Digest} is longer than its descriptor's {blob.Size} bytes", "the registry served wrong content; do not use it");
                            hash.AppendData(buf, 0, n);
                            await file.WriteAsync(buf.AsMemory(0, n), ct).ConfigureAwait(false);
                            fetched += n;
                            bytesRead?.Report(n);
                            reported += n;
                        }
                        if (total != blob.Size)
                            throw new IOException($"blob {blob.Digest} ended after {total} of {blob.Size} bytes");
                    }
                    string actual = "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
                    if (actual != blob.Digest)
                    {
                        file.SetLength(0);
                        if (!restarted && have > 0)
                        {
                            restarted = true; // the kept prefix was not this blob's: start over once
                            bytesRead?.Report(-reported);
                            attempt--;
                            continue;
                        }
                        throw MicroagentException.Invalid($"blob {blob.Digest} has digest {actual}", "the registry served wrong content; do not use it");
                    }
                    file.Flush(flushToDisk: true);
                    File.Move(partial, destination, overwrite: true);
                    return fetched;
                }
                catch (Exception e) when (IsTransient(e) && attempt < _options.MaxAttempts && !ct.IsCancellationRequested)
                {
                    bytesRead?.Report(-reported);
                    if (e is IOException { Message: var m } && m.StartsWith("the registry refused the range", StringComparison.Ordinal)) file.SetLength(0);
                    await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
                }
                catch (Exception e) when (IsTransient(e))
                {
                    throw MicroagentException.Transient($"downloading blob {blob.Digest} from {image.Registry} failed: {e.Message}",
                        "check the network and the registry, then pull again: the part already downloaded is kept and only the rest is fetched", e);
                }
            }
        }
        finally
        {
            await file.DisposeAsync().ConfigureAwait(false);
            if (privateFile && File.Exists(partial)) File.Delete(partial);
        }
    }

    /// <summary>Opens (or creates) the partial file for this process alone; an <see cref="IOException"/> when another process holds it.</summary>
    private static FileStream OpenPartial(string path) => new(path, new FileStreamOptions
    {
        Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0,
        UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
    });

    /// <summary>Feeds the first <paramref name="length"/> bytes of <paramref name="file"/> to <paramref name="hash"/>.</summary>
    private static async Task HashPrefixAsync(FileStream file, long length, IncrementalHash hash, CancellationToken ct)
    {
        file.Seek(0, SeekOrigin.Begin);
        byte[] buf = new byte[1 << 18];
        long left = length;
        while (left > 0)
        {
            int n = await file.ReadAsync(buf.AsMemory(0, (int)Math.Min(buf.Length, left)), ct).ConfigureAwait(false);
            if (n == 0) throw new IOException($"{file.Name} shrank while it was read");
            hash.AppendData(buf, 0, n);
            left -= n;
        }
    }
}
