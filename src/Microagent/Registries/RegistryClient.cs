using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microagent.Errors;
using Microagent.Images;

namespace Microagent.Registries;

/// <summary>Registry client settings.</summary>
/// <param name="InsecureRegistries">Registries (host[:port]) reached over plain HTTP even when not on loopback.</param>
/// <param name="MaxAttempts">Tries per request on transient failures (connection errors, 408, 429, 5xx).</param>
/// <param name="Timeout">Per-request timeout (default 60 s) until the response headers, and again for reading a small body
/// (manifest, token, error); token requests get it too. Blob bodies stream without one.</param>
internal sealed record RegistryOptions(IReadOnlyCollection<string>? InsecureRegistries = null, int MaxAttempts = 4, TimeSpan? Timeout = null);

/// <summary>A fetched manifest or index: its exact bytes, media type and sha256 digest.</summary>
internal sealed record FetchedManifest(byte[] Bytes, string MediaType, string Digest);

/// <summary>
/// Client for the OCI distribution API v2 (distribution-spec <c>spec.md</c>): manifests by tag or
/// digest, blobs with streamed sha256 verification. Auth: anonymous, bearer tokens from the
/// <c>WWW-Authenticate</c> challenge (cached per registry and scope until they expire), and basic.
/// HTTPS with the system trust store; plain HTTP only for loopback registries or those named
/// insecure. Redirects are followed (the Authorization header is not forwarded to another host).
/// Invariant: credentials and tokens never appear in exceptions or messages.
/// </summary>
internal sealed partial class RegistryClient : IDisposable
{
    /// <summary>Manifest media types asked for, in preference order.</summary>
    public static readonly string[] ManifestAccept =
        [OciMediaTypes.ImageIndex, OciMediaTypes.DockerManifestList, OciMediaTypes.ImageManifest, OciMediaTypes.DockerManifest];

    private const int MaxManifestBytes = 4 << 20;
    private const int MaxTokenBytes = 4 << 20;
    private const int MaxErrorBodyBytes = 64 << 10;
    private readonly HttpClient _http;
    private readonly AuthStore? _auth;
    private readonly RegistryOptions _options;
    private readonly HashSet<string> _insecure;
    private readonly Dictionary<string, (AuthenticationHeaderValue Header, DateTimeOffset Expires)> _tokens = new(StringComparer.Ordinal);
    private readonly Lock _tokensLock = new();

    /// <summary>Creates a client; <paramref name="auth"/> supplies stored credentials.</summary>
    public RegistryClient(AuthStore? auth, RegistryOptions? options = null, HttpMessageHandler? handler = null)
    {
        _auth = auth;
        _options = options ?? new RegistryOptions();
        _insecure = new HashSet<string>((_options.InsecureRegistries ?? []).Select(AuthStore.Normalize), StringComparer.Ordinal);
        handler ??= new SocketsHttpHandler
        {
            AllowAutoRedirect = true,
            MaxAutomaticRedirections = 10,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(15),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("microagent/0.1");
    }

    /// <summary>Credential used for every registry this client talks to, instead of the stored ones (login checks).</summary>
    public RegistryCredential? CredentialOverride { get; init; }

    /// <summary>Base URI of the v2 API of <paramref name="registry"/> (http only for loopback or insecure registries).</summary>
    public Uri BaseUri(string registry)
    {
        string host = registry == ImageReference.DockerHub ? ImageReference.DockerHubApiHost : registry;
        return new Uri($"{(UsesPlainHttp(registry) ? "http" : "https")}://{host}/v2/");
    }

    /// <summary>Whether <paramref name="registry"/> is reached over plain HTTP.</summary>
    public bool UsesPlainHttp(string registry)
    {
        if (_insecure.Contains(AuthStore.Normalize(registry))) return true;
        string host = registry;
        if (host.StartsWith('[')) host = host[1..host.IndexOf(']')];
        else if (host.Count(c => c == ':') == 1) host = host[..host.IndexOf(':')];
        return host == "localhost" || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }

    /// <summary>Checks that <paramref name="registry"/> answers the v2 API and accepts the credentials (GET /v2/).</summary>
    public async Task PingAsync(string registry, CancellationToken ct = default)
    {
        using var resp = await SendAsync(registry, null, () => new HttpRequestMessage(HttpMethod.Get, BaseUri(registry)), ct).ConfigureAwait(false);
        await EnsureSuccess(resp, registry, "the registry API (/v2/)", ct).ConfigureAwait(false);
    }

    /// <summary>Fetches a manifest or index by tag or digest; verifies the digest when fetched by digest.</summary>
    public async Task<FetchedManifest> GetManifestAsync(ImageReference image, string reference, CancellationToken ct = default)
    {
        var uri = new Uri(BaseUri(image.Registry), $"{image.Repository}/manifests/{reference}");
        using var resp = await SendAsync(image.Registry, Scope(image), () =>
        {
            var req = new HttpRequestMessage(HttpMethod.Get, uri);
            foreach (string t in ManifestAccept) req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(t));
            return req;
        }, ct).ConfigureAwait(false);
        await EnsureSuccess(resp, image.Registry, $"manifest {image.Name}:{reference}", ct).ConfigureAwait(false);
        byte[] bytes = await ReadBoundedAsync(resp.Content, MaxManifestBytes, $"manifest {image.Name}:{reference} from {image.Registry}", ct).ConfigureAwait(false);
        string digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (reference.StartsWith("sha256:", StringComparison.Ordinal) && reference != digest)
            throw MicroagentException.Invalid($"registry returned content with digest {digest} for {image.Name}@{reference}",
                "the registry or a proxy altered the manifest; do not use it");
        string mediaType = resp.Content.Headers.ContentType?.MediaType ?? "";
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("not an object");
            // Some registries answer application/json: the document's own mediaType decides.
            if (!OciMediaTypes.IsIndex(mediaType) && !OciMediaTypes.IsManifest(mediaType))
            {
                if (doc.RootElement.TryGetProperty("mediaType", out var mt)) mediaType = mt.GetString() ?? mediaType;
                else if (doc.RootElement.TryGetProperty("manifests", out _)) mediaType = OciMediaTypes.ImageIndex;
                else if (doc.RootElement.TryGetProperty("layers", out _)) mediaType = OciMediaTypes.ImageManifest;
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw MicroagentException.Permanent($"manifest {image.Name}:{reference} from {image.Registry} is not a JSON object", "check the registry");
        }
        return new FetchedManifest(bytes, mediaType, digest);
    }

    private static string Scope(ImageReference image) => $"repository:{image.Repository}:pull";

    /// <summary>
    /// Sends a request built by <paramref name="build"/>, answering one auth challenge and retrying
    /// transient failures. The response is returned whatever its status.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(string registry, string? scope, Func<HttpRequestMessage> build, CancellationToken ct)
    {
        string cacheKey = $"{registry} {scope}";
        bool challenged = false;
        for (int attempt = 1; ; attempt++)
        {
            HttpResponseMessage? resp = null;
            try
            {
                using var req = build();
                lock (_tokensLock)
                    if (_tokens.TryGetValue(cacheKey, out var cached) && cached.Expires > DateTimeOffset.UtcNow) req.Headers.Authorization = cached.Header;
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(_options.Timeout ?? TimeSpan.FromSeconds(60));
                try
                {
                    resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new TimeoutException($"no response from {registry} within the timeout");
                }
                if (resp.StatusCode == HttpStatusCode.Unauthorized && !challenged)
                {
                    challenged = true;
                    var challenge = resp.Headers.WwwAuthenticate.Select(h => AuthChallenge.Parse(h.ToString())).FirstOrDefault(c => c is not null);
                    if (challenge is not null && await AuthorizeAsync(registry, scope, challenge, cacheKey, ct).ConfigureAwait(false))
                    {
                        resp.Dispose();
                        attempt--;
                        continue;
                    }
                    return resp;
                }
                if (IsTransientStatus(resp.StatusCode) && attempt < _options.MaxAttempts)
                {
                    resp.Dispose();
                    await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
                    continue;
                }
                return resp;
            }
            catch (Exception e) when (IsTransient(e) && attempt < _options.MaxAttempts && !ct.IsCancellationRequested)
            {
                resp?.Dispose();
                await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e))
            {
                resp?.Dispose();
                throw MicroagentException.Transient($"cannot reach registry {registry} ({BaseUri(registry).GetLeftPart(UriPartial.Authority)}): {e.Message}",
                    UsesPlainHttp(registry) ? "check that the registry is running" : "check the network and the registry; for a registry without TLS use --insecure-registry", e);
            }
        }
    }

    /// <summary>Answers a challenge: caches a bearer token or a basic header. False when nothing can be sent.</summary>
    private async Task<bool> AuthorizeAsync(string registry, string? scope, AuthChallenge challenge, string cacheKey, CancellationToken ct)
    {
        var cred = CredentialOverride ?? _auth?.Get(registry);
        if (challenge.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            if (cred is null) return false;
            var header = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{cred.Username}:{cred.Secret}")));
            lock (_tokensLock) _tokens[cacheKey] = (header, DateTimeOffset.MaxValue);
            return true;
        }
        if (!challenge.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase) || challenge["realm"] is not { } realm) return false;
        if (!Uri.TryCreate(realm, UriKind.Absolute, out var realmUri) || (realmUri.Scheme != "https" && !(realmUri.Scheme == "http" && UsesPlainHttp(registry))))
            throw Denied($"registry {registry} sent its token realm over an unsupported scheme", "use a registry whose token service uses https");
        var query = new List<string>();
        if (challenge["service"] is { } service) query.Add("service=" + Uri.EscapeDataString(service));
        string? wantScope = challenge["scope"] ?? scope;
        if (wantScope is not null) query.Add("scope=" + Uri.EscapeDataString(wantScope));
        var tokenUri = new UriBuilder(realmUri) { Query = string.Join('&', query) }.Uri;
        using var req = new HttpRequestMessage(HttpMethod.Get, tokenUri);
        if (cred is not null)
            req.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{cred.Username}:{cred.Secret}")));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(RequestTimeout);
        HttpResponseMessage sent;
        try
        {
            sent = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw MicroagentException.Transient($"token service of {registry} did not answer within {RequestTimeout.TotalSeconds:0.###} s", "check the network and the registry, then retry");
        }
        catch (HttpRequestException e)
        {
            // The message names at most host and port, never the query or the credentials.
            throw MicroagentException.Transient($"cannot reach the token service of {registry}: {e.Message}", "check the network and the registry, then retry", e);
        }
        using var resp = sent;
        if (resp.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            throw Denied($"registry {registry} refused the credentials for a token",
                cred is null ? $"log in: microagent registry login {registry}" : $"check the credentials: microagent registry login {registry}");
        if (!resp.IsSuccessStatusCode)
            throw IsTransientStatus(resp.StatusCode)
                ? MicroagentException.Transient($"token service of {registry} answered {(int)resp.StatusCode}", "retry later")
                : MicroagentException.Permanent($"token service of {registry} answered {(int)resp.StatusCode}", "check the registry");
        byte[] body = await ReadBoundedAsync(resp.Content, MaxTokenBytes, $"token response of {registry}", ct).ConfigureAwait(false);
        string? token;
        int expiresIn;
        try
        {
            using var doc = JsonDocument.Parse(body);
            token = doc.RootElement.TryGetProperty("token", out var t) ? t.GetString()
                : doc.RootElement.TryGetProperty("access_token", out var at) ? at.GetString() : null;
            expiresIn = doc.RootElement.TryGetProperty("expires_in", out var ei) && ei.ValueKind == JsonValueKind.Number && ei.TryGetInt32(out int s) && s > 0 ? s : 60;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Not the exception itself: its message could quote the body, which may hold a token.
            throw MicroagentException.Permanent($"token service of {registry} returned a response that is not a JSON object", "check the registry");
        }
        if (string.IsNullOrEmpty(token)) throw MicroagentException.Permanent($"token service of {registry} returned no token", "check the registry");
        lock (_tokensLock)
            _tokens[cacheKey] = (new AuthenticationHeaderValue("Bearer", token), DateTimeOffset.UtcNow.AddSeconds(Math.Max(1, expiresIn - 10)));
        return true;
    }

    private async Task EnsureSuccess(HttpResponseMessage resp, string registry, string what, CancellationToken ct)
    {
        if (resp.IsSuccessStatusCode) return;
        string detail = "";
        try
        {
            byte[] body = await ReadBoundedAsync(resp.Content, MaxErrorBodyBytes, $"error response of {registry}", ct, truncate: true).ConfigureAwait(false);
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("errors", out var errs) && errs.GetArrayLength() > 0)
                detail = ": " + string.Join("; ", errs.EnumerateArray().Select(e => $"{e.GetProperty("code").GetString()} {e.GetProperty("message").GetString()}"));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or HttpRequestException or IOException
            or MicroagentException) { } // unreadable or slow detail: the status alone still says what failed
        int code = (int)resp.StatusCode;
        throw resp.StatusCode switch
        {
            HttpStatusCode.Unauthorized => Denied($"{registry} requires authentication for {what} ({code}{detail})",
                (CredentialOverride ?? _auth?.Get(registry)) is null ? $"log in: microagent registry login {registry}" : $"the stored credentials were refused; log in again: microagent registry login {registry}"),
            HttpStatusCode.Forbidden => Denied($"{registry} denied access to {what} ({code}{detail})", "check that the account may pull this repository"),
            HttpStatusCode.NotFound => MicroagentException.NotFound($"{what} not found on {registry}{detail}", "check the repository name and tag"),
            _ when IsTransientStatus(resp.StatusCode) => MicroagentException.Transient($"{registry} answered {code} for {what}{detail}", "retry later"),
            _ => MicroagentException.Permanent($"{registry} answered {code} for {what}{detail}", "check the reference and the registry"),
        };
    }

    private TimeSpan RequestTimeout => _options.Timeout ?? TimeSpan.FromSeconds(60);

    /// <summary>
    /// Reads a small body (manifest, token, error) through a bounded loop: at most <paramref name="limit"/> bytes whatever
    /// the Content-Length or chunking, within the per-request timeout. Over the limit it throws a permanent
    /// <see cref="MicroagentException"/> naming <paramref name="what"/>, or with <paramref name="truncate"/> returns the first
    /// <paramref name="limit"/> bytes. A body that does not arrive in time is a transient failure.
    /// </summary>
    private async Task<byte[]> ReadBoundedAsync(HttpContent content, int limit, string what, CancellationToken ct, bool truncate = false)
    {
        if (!truncate && content.Headers.ContentLength > limit)
            throw MicroagentException.Permanent($"{what} is larger than {limit} bytes", "check the registry");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(RequestTimeout);
        try
        {
            await using var body = await content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            using var buffer = new MemoryStream();
            byte[] chunk = new byte[Math.Min(limit + 1, 1 << 16)];
            while (true)
            {
                int want = (int)Math.Min(chunk.Length, limit + 1L - buffer.Length);
                int n = await body.ReadAsync(chunk.AsMemory(0, want), timeout.Token).ConfigureAwait(false);
                if (n == 0) return buffer.ToArray();
                if (buffer.Length + n > limit)
                {
                    if (!truncate) throw MicroagentException.Permanent($"{what} is larger than {limit} bytes", "check the registry");
                    buffer.Write(chunk, 0, limit - (int)buffer.Length);
                    return buffer.ToArray();
                }
                buffer.Write(chunk, 0, n);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw MicroagentException.Transient($"{what} did not arrive within {RequestTimeout.TotalSeconds:0.###} s", "check the network and the registry, then retry");
        }
    }

    private static bool IsTransientStatus(HttpStatusCode s) => s is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests
        or HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    private static bool IsTransient(Exception e) => e is HttpRequestException or TimeoutException
        || (e is IOException && e is not MicroagentException);

    private static MicroagentException Denied(string message, string remediation) => new(ErrorKind.PolicyDenied, message, remediation);

    private static TimeSpan Backoff(int attempt) => TimeSpan.FromMilliseconds(Math.Min(4000, 250 * (1 << (attempt - 1))) + Random.Shared.Next(100));

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();
}
