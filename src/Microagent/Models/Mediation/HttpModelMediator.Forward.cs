using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Microagent.Models.Mediation;

/// <summary>The forward of an allowed request: one runner connection per request, the answer relayed as it arrives.</summary>
internal sealed partial class HttpModelMediator
{
    /// <summary>
    /// Sends the request to <paramref name="endpoint"/> with the guest's end-to-end fields only (Host set to the runner, hop-by-hop
    /// and proxy fields, fields the Connection field names and every <c>X-Microagent-*</c> field dropped; the body re-framed with
    /// Content-Length; <c>Connection: close</c>), then relays the status, the end-to-end response fields and the body, flushing
    /// every read, so an event stream reaches the guest event by event. A failure before the response head is a 502; after it, the
    /// guest connection is closed (the response is cut short, which the guest sees).
    /// </summary>
    private async Task<(int Status, string? End, bool Keep)> ForwardAsync(HttpRequestHead head, byte[] body, ModelEndpoint endpoint,
        CountingStream guest, string id, CancellationToken ct)
    {
        Socket socket;
        try { socket = await ConnectAsync(endpoint, ct).ConfigureAwait(false); }
        catch (Exception e) when (e is SocketException or IOException or ArgumentException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            string why = e is OperationCanceledException ? $"no connection within {ConnectTimeout.TotalSeconds:0} s" : e.Message;
            var error = MediatorError.Runner($"cannot reach {endpoint.Host}:{endpoint.Port}: {why}");
            await RespondAsync(guest, error, id, head.KeepAlive, ct).ConfigureAwait(false);
            return (502, "runner-unreachable", head.KeepAlive);
        }
        using var _ = socket;
        await using var up = new NetworkStream(socket, ownsSocket: false);
        var reader = new Http1Reader(up);
        HttpResponseHead response;
        try
        {
            var fields = head.Headers.Fields.Where(f => Http1.ForwardRequestField(f.Key, head.Headers)).ToList();
            fields.Insert(0, new("Host", endpoint.Host.Contains(':') ? $"[{endpoint.Host}]:{endpoint.Port}" : $"{endpoint.Host}:{endpoint.Port}"));
            if (body.Length > 0 || head.Method is "POST" or "PUT" or "PATCH") fields.Add(new("Content-Length", body.Length.ToString(CultureInfo.InvariantCulture)));
            fields.Add(new("Connection", "close"));
            fields.Add(new("X-Microagent-Request-Id", id));
            fields.Add(new("X-Microagent-Workspace", workspace));
            await up.WriteAsync(Http1.Head($"{head.Method} {head.Target} HTTP/1.1", fields), ct).ConfigureAwait(false);
            if (body.Length > 0) await up.WriteAsync(body, ct).ConfigureAwait(false);
            do response = await reader.ReadResponseHeadAsync(Limits, ct).ConfigureAwait(false);
            while (response.Status is >= 100 and < 200 and not 101);
            if (response.Status == 101) throw new HttpWireException(502, "the runner switched protocols, which the mediator does not relay");
        }
        catch (Exception e) when (e is SocketException or IOException or HttpWireException)
        {
            string why = e is HttpWireException ? e.Message : $"the connection failed before an answer ({e.Message})";
            await RespondAsync(guest, MediatorError.Runner(why), id, head.KeepAlive, ct).ConfigureAwait(false);
            return (502, "runner-failed", head.KeepAlive);
        }

        BodyFraming framing;
        long length;
        try { (framing, length) = Http1.ResponseFraming(response, head.Method); }
        catch (HttpWireException e)
        {
            await RespondAsync(guest, MediatorError.Runner(e.Message), id, head.KeepAlive, ct).ConfigureAwait(false);
            return (502, "runner-failed", head.KeepAlive);
        }
        // An HTTP/1.0 guest cannot read chunked: it gets the decoded body, delimited by the close.
        bool rechunk = framing == BodyFraming.Chunked && head.Minor >= 1;
        bool keep = head.KeepAlive && (framing is BodyFraming.None or BodyFraming.Length || rechunk);
        var outFields = response.Headers.Fields.Where(f => Http1.ForwardResponseField(f.Key, response.Headers)).ToList();
        if (framing == BodyFraming.Length) outFields.Add(new("Content-Length", length.ToString(CultureInfo.InvariantCulture)));
        else if (rechunk) outFields.Add(new("Transfer-Encoding", "chunked"));
        else if (framing == BodyFraming.None && response.Headers.Get("Content-Length") is { } cl && response.Status is not (204 or 304) && response.Status >= 200)
            outFields.Add(new("Content-Length", cl)); // a HEAD answer keeps the length it announces
        outFields.Add(new("Connection", keep ? "keep-alive" : "close"));
        outFields.Add(new("X-Microagent-Request-Id", id));
        try
        {
            await guest.WriteAsync(Http1.Head($"HTTP/1.1 {response.Status} {response.Reason}", outFields), ct).ConfigureAwait(false);
            await guest.FlushAsync(ct).ConfigureAwait(false);
            await reader.RelayBodyAsync(framing, length, guest, Limits, rechunk, ct).ConfigureAwait(false);
            return (response.Status, null, keep);
        }
        catch (Exception e) when (e is SocketException or IOException or HttpWireException or ObjectDisposedException)
        {
            return (response.Status, guest.Failed ? "guest-gone" : "runner-reset", false);
        }
    }

    private async Task<Socket> ConnectAsync(ModelEndpoint endpoint, CancellationToken ct)
    {
        var address = endpoint.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(endpoint.Host, out var a) ? a : throw new ArgumentException($"'{endpoint.Host}' is not an IP address");
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var timer = Timed(ct, ConnectTimeout);
            await socket.ConnectAsync(new IPEndPoint(address, endpoint.Port), timer.Token).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>The guest side of a connection, counting what is written to it and noting whether a write failed.</summary>
internal sealed class CountingStream(Stream inner) : Stream
{
    /// <summary>Bytes written.</summary>
    public long Written { get; private set; }

    /// <summary>Whether a write or flush failed (the guest went away).</summary>
    public bool Failed { get; private set; }

    /// <inheritdoc/>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try { await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false); }
        catch { Failed = true; throw; }
        Written += buffer.Length;
    }

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        try { await inner.FlushAsync(cancellationToken).ConfigureAwait(false); }
        catch { Failed = true; throw; }
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();
    /// <inheritdoc/>
    public override void Flush() => FlushAsync().GetAwaiter().GetResult();
    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();
    /// <inheritdoc/>
    public override bool CanRead => false;
    /// <inheritdoc/>
    public override bool CanSeek => false;
    /// <inheritdoc/>
    public override bool CanWrite => true;
    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();
    /// <inheritdoc/>
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
}
