using System.Net.Http.Headers;
using System.Text.Json;

namespace Microagent.Models.Mediation;

/// <summary>Decides one request; never throws for a policy's own failure (that is an <c>error</c> decision: the request fails closed).</summary>
internal interface IModelDecider : IDisposable
{
    /// <summary>The decision for <paramref name="facts"/>.</summary>
    Task<ModelPolicyDecision> DecideAsync(ModelRequestFacts facts, CancellationToken ct);
}

/// <summary><c>local-allow</c>: every request is allowed (and audited).</summary>
internal sealed class LocalAllowDecider : IModelDecider
{
    /// <inheritdoc/>
    public Task<ModelPolicyDecision> DecideAsync(ModelRequestFacts facts, CancellationToken ct) =>
        Task.FromResult(ModelPolicyDecision.Allow("local-allow allows every request", "local-allow"));

    /// <inheritdoc/>
    public void Dispose() { }
}

/// <summary>
/// <c>policy</c>: the policy file decides first; with a policy URL as well, a request the file allows is then asked of the URL
/// (both must allow). Either alone decides alone.
/// </summary>
internal sealed class PolicyDecider(PolicyFileSource? file, PolicyUrlClient? url) : IModelDecider
{
    /// <inheritdoc/>
    public async Task<ModelPolicyDecision> DecideAsync(ModelRequestFacts facts, CancellationToken ct)
    {
        if (file is not null)
        {
            var (policy, error) = file.Current();
            if (policy is null) return ModelPolicyDecision.Error(error ?? "no policy", "policy-file");
            var decision = policy.Evaluate(facts);
            if (!decision.Allowed || url is null) return decision;
        }
        return await url!.DecideAsync(facts, ct).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void Dispose() => url?.Dispose();
}

/// <summary>
/// Asks a policy URL (<see cref="ModelPolicyQuery"/> POSTed, <see cref="ModelPolicyAnswer"/> expected) within a timeout. No proxy,
/// no redirects; the answer is bounded (<see cref="MaxAnswerBytes"/>). A timeout, a refused connection, a non-2xx status or an
/// answer that is not allow/deny is an <c>error</c> decision (503: fail closed).
/// </summary>
internal sealed class PolicyUrlClient : IDisposable
{
    /// <summary>Largest answer read.</summary>
    public const int MaxAnswerBytes = 64 * 1024;
    private readonly HttpClient _http;
    private readonly Uri _url;
    private readonly TimeSpan _timeout;

    /// <summary>A client for <paramref name="url"/> (absolute http or https).</summary>
    public PolicyUrlClient(Uri url, TimeSpan timeout)
    {
        _url = url;
        _timeout = timeout;
        _http = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false, AllowAutoRedirect = false, ConnectTimeout = timeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30), MaxResponseHeadersLength = 64,
        }) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The URL's decision (rule <c>policy-url</c>).</summary>
    public async Task<ModelPolicyDecision> DecideAsync(ModelRequestFacts facts, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_timeout);
        try
        {
            using var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(ModelPolicyQuery.Of(facts), ModelPolicyUrlJson.Default.ModelPolicyQuery));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = await _http.PostAsync(_url, content, cts.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode) return Error($"the policy URL answered {(int)response.StatusCode}");
            await using var body = await response.Content.ReadAsStreamAsync(cts.Token).ConfigureAwait(false);
            var buf = new MemoryStream();
            var chunk = new byte[8192];
            for (int n; (n = await body.ReadAsync(chunk, cts.Token).ConfigureAwait(false)) > 0;)
            {
                if (buf.Length + n > MaxAnswerBytes) return Error($"the policy URL's answer is over {MaxAnswerBytes} bytes");
                buf.Write(chunk, 0, n);
            }
            ModelPolicyAnswer? answer;
            try { answer = JsonSerializer.Deserialize(buf.ToArray(), ModelPolicyUrlJson.Default.ModelPolicyAnswer); }
            catch (JsonException) { return Error("the policy URL's answer is not JSON {\"decision\": \"allow\"|\"deny\", \"reason\": ...}"); }
            string reason = Clip(answer?.Reason);
            return answer?.Decision switch
            {
                "allow" => ModelPolicyDecision.Allow(reason.Length > 0 ? reason : "the policy URL allows", "policy-url"),
                "deny" => ModelPolicyDecision.Deny(reason.Length > 0 ? reason : "the policy URL denies", "policy-url"),
                _ => Error("the policy URL's answer has no decision allow or deny"),
            };
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return Error($"the policy URL did not answer within {(long)_timeout.TotalMilliseconds} ms");
        }
        catch (HttpRequestException e) { return Error($"the policy URL is unreachable: {e.Message}"); }
        catch (IOException e) { return Error($"the policy URL failed: {e.Message}"); }
    }

    private static string Clip(string? s) => s is null ? "" : s.Length <= 500 ? s : s[..500];

    private static ModelPolicyDecision Error(string reason) => ModelPolicyDecision.Error(reason, "policy-url");

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();
}
