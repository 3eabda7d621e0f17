using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Microagent.Models.Mediation;

/// <summary>
/// The HTTP mediator between a guest's model forward and the runner (docs/ARCHITECTURE.md "Model mediation"). Per guest connection:
/// read a request (bounded, timed: <see cref="HttpLimits"/>), take its facts from the request line and the JSON body, decide
/// (<see cref="IModelDecider"/>), forward an allowed request to the runner resolved for that request and stream the answer back
/// as it arrives; answer the rest itself (400/408/413/431 unreadable, 403 denied, 503 policy failed, 502 runner failed) with an
/// OpenAI error body; audit every request. Repeats while the guest keeps the connection alive.
/// </summary>
internal sealed partial class HttpModelMediator(string workspace, IModelDecider decider, ModelAudit audit, Action<string> log, HttpLimits? limits = null)
    : IModelMediator
{
    private readonly string _idPrefix = "mr-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
    private long _seq;

    /// <summary>The bounds on guest requests.</summary>
    public HttpLimits Limits { get; } = limits ?? new HttpLimits();

    /// <summary>How long a connect to the runner may take (then 502).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <inheritdoc/>
    public async Task ServeAsync(Stream guest, IModelEndpointSource upstream, CancellationToken ct)
    {
        var reader = new Http1Reader(guest);
        var to = new CountingStream(guest);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                using (var idle = Timed(ct, Limits.IdleTimeout))
                {
                    try { if (!await reader.WaitForDataAsync(idle.Token).ConfigureAwait(false)) return; }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return; }
                }
                if (!await ServeOneAsync(reader, to, upstream, ct).ConfigureAwait(false)) return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException || e is OperationCanceledException && ct.IsCancellationRequested) { }
    }

    /// <summary>One request and its answer; false when the connection is to be closed.</summary>
    private async Task<bool> ServeOneAsync(Http1Reader reader, CountingStream guest, IModelEndpointSource upstream, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var time = DateTimeOffset.UtcNow;
        string id = $"{_idPrefix}-{Interlocked.Increment(ref _seq)}";
        long sentBefore = guest.Written;
        HttpRequestHead? head = null;
        byte[] body;
        try
        {
            using (var headTimer = Timed(ct, Limits.HeadTimeout))
                head = await reader.ReadRequestHeadAsync(Limits, headTimer.Token).ConfigureAwait(false);
            if (head is null) return false;
            var (framing, length) = Http1.RequestFraming(head.Headers, Limits);
            if (head.ExpectsContinue && framing != BodyFraming.None && head.Minor >= 1)
                await guest.WriteAsync("HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray(), ct).ConfigureAwait(false);
            using var bodyTimer = Timed(ct, Limits.BodyTimeout);
            body = await reader.ReadBodyAsync(framing, length, Limits, bodyTimer.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpWireException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            var error = e is HttpWireException w ? MediatorError.Bad(w.Status, w.Message) : MediatorError.Bad(408, "the request did not arrive in time");
            await RespondAsync(guest, error, id, keepAlive: false, ct).ConfigureAwait(false);
            Audit(new ModelAuditRecord
            {
                Time = time, RequestId = id, Workspace = workspace, Method = head?.Method, Path = head?.Path,
                Decision = "invalid", Reason = error.Message, Status = error.Status, RequestBytes = head?.HeadBytes ?? 0,
                ResponseBytes = guest.Written - sentBefore, DurationMs = clock.ElapsedMilliseconds,
            });
            await reader.DrainAsync(1 << 20, TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            return false;
        }

        ModelEndpoint? endpoint = null;
        try { endpoint = await upstream.ResolveAsync(ct).ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException) { log($"model mediator: resolving the runner failed: {e.Message}"); }
        ModelRequestFacts facts;
        try { facts = ModelRequestFacts.FromRequest(workspace, head.Method, head.Target, body, head.HeadBytes + body.Length, endpoint?.RunnerId, id); }
        catch (Errors.MicroagentException e)
        {
            var error = MediatorError.Bad(400, e.Message);
            await RespondAsync(guest, error, id, head.KeepAlive, ct).ConfigureAwait(false);
            Audit(new ModelAuditRecord
            {
                Time = time, RequestId = id, Workspace = workspace, Worker = endpoint?.RunnerId, Method = head.Method, Path = head.Path,
                Capability = ModelCapabilities.Of(head.Path), Decision = "invalid", Reason = error.Message, Status = 400,
                RequestBytes = head.HeadBytes + body.Length, ResponseBytes = guest.Written - sentBefore, DurationMs = clock.ElapsedMilliseconds,
            });
            return head.KeepAlive;
        }

        ModelPolicyDecision decision;
        try { decision = await decider.DecideAsync(facts, ct).ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            decision = ModelPolicyDecision.Error($"the policy failed: {e.Message}", "policy");
        }

        var outcome = (Status: 0, End: (string?)null, Keep: head.KeepAlive);
        MediatorError? refusal = decision switch
        {
            { Allowed: true } when endpoint is null => MediatorError.Runner("no model runner is running for this workspace"),
            { Allowed: true } => null,
            { Decision: "deny" } => MediatorError.Denied(decision.Reason),
            _ => MediatorError.PolicyFailed(decision.Reason),
        };
        try
        {
            if (refusal is null) outcome = await ForwardAsync(head, body, endpoint!, guest, id, ct).ConfigureAwait(false);
            else
            {
                await RespondAsync(guest, refusal, id, head.KeepAlive, ct).ConfigureAwait(false);
                outcome.Status = refusal.Status;
            }
        }
        finally
        {
            Audit(new ModelAuditRecord
            {
                Time = time, RequestId = id, Workspace = workspace, Worker = facts.Worker, Method = facts.Method, Path = facts.Path,
                Capability = facts.Capability, Model = facts.Model, Stream = facts.Stream, Decision = decision.Decision,
                Reason = refusal is { Status: 502 } ? refusal.Message : decision.Reason, Rule = decision.Rule, Limit = decision.Limit,
                Status = outcome.Status, RequestBytes = facts.RequestBytes, ResponseBytes = guest.Written - sentBefore,
                DurationMs = clock.ElapsedMilliseconds, End = outcome.End ?? (ct.IsCancellationRequested ? "cancelled" : outcome.Status == 0 ? "guest-gone" : null),
            });
        }
        return outcome.Keep;
    }

    /// <summary>Writes the mediator's own answer (an OpenAI error body).</summary>
    private static async Task RespondAsync(Stream guest, MediatorError error, string id, bool keepAlive, CancellationToken ct)
    {
        byte[] body = OpenAiErrorWire.Body(error.Message, error.Type, error.Code);
        byte[] head = Http1.Head($"HTTP/1.1 {error.Status} {Http1.Reason(error.Status)}",
        [
            new("Content-Type", "application/json"), new("Content-Length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("Connection", keepAlive ? "keep-alive" : "close"), new("X-Microagent-Request-Id", id),
        ]);
        try
        {
            await guest.WriteAsync(head, ct).ConfigureAwait(false);
            await guest.WriteAsync(body, ct).ConfigureAwait(false);
            await guest.FlushAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { }
    }

    private void Audit(ModelAuditRecord record) => audit.Write(record);

    private static CancellationTokenSource Timed(CancellationToken ct, TimeSpan after)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(after);
        return cts;
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        decider.Dispose();
        return ValueTask.CompletedTask;
    }
}
