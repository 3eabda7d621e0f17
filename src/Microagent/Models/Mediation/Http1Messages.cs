using System.Text;

namespace Microagent.Models.Mediation;

// HTTP/1.1 message heads as the model mediator reads and writes them (RFC 9110 semantics, RFC 9112 message syntax).
// Strict where leniency would let a guest smuggle a second reading past the mediator: CRLF only, no obs-fold, no
// whitespace before a colon, one Content-Length, Transfer-Encoding only "chunked", never both (RFC 9112 §6.1, §6.3, §5.1).

/// <summary>A malformed or oversized message: answered with <see cref="Status"/> and the connection is closed.</summary>
internal sealed class HttpWireException(int status, string message) : Exception(message)
{
    /// <summary>The status to answer (400, 408, 413, 431), or 502 when the upstream sent it.</summary>
    public int Status { get; } = status;
}

/// <summary>Bounds on what one guest request may be (docs/ARCHITECTURE.md "Model mediation").</summary>
internal sealed record HttpLimits
{
    /// <summary>Request line plus header fields plus the blank line (431 past it).</summary>
    public int MaxHeadBytes { get; init; } = 32 * 1024;
    /// <summary>Header fields in one head (431 past it).</summary>
    public int MaxHeaders { get; init; } = 100;
    /// <summary>A request body, decoded (413 past it).</summary>
    public long MaxBodyBytes { get; init; } = 16L << 20;
    /// <summary>One chunk-size line (400 past it).</summary>
    public int MaxChunkLineBytes { get; init; } = 4096;
    /// <summary>How long a kept-alive connection may sit before its next request (then it is closed quietly).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>From a request's first byte to the end of its head (408 past it: slow-header clients are cut off).</summary>
    public TimeSpan HeadTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>From the end of the head to the end of the body (408 past it).</summary>
    public TimeSpan BodyTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>Header fields in the order received; names compare case-insensitively (RFC 9110 §5.1).</summary>
internal sealed class HttpHeaders
{
    private readonly List<KeyValuePair<string, string>> _fields = [];

    /// <summary>The fields in order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Fields => _fields;

    /// <summary>Appends a field.</summary>
    public void Add(string name, string value) => _fields.Add(new(name, value));

    /// <summary>Every value of <paramref name="name"/>.</summary>
    public IEnumerable<string> All(string name) =>
        _fields.Where(f => string.Equals(f.Key, name, StringComparison.OrdinalIgnoreCase)).Select(f => f.Value);

    /// <summary>The first value of <paramref name="name"/>, or null.</summary>
    public string? Get(string name) => All(name).FirstOrDefault();

    /// <summary>Whether a comma-separated field <paramref name="name"/> lists <paramref name="token"/> (case-insensitive).</summary>
    public bool HasToken(string name, string token) =>
        All(name).SelectMany(v => v.Split(',')).Any(t => string.Equals(t.Trim(), token, StringComparison.OrdinalIgnoreCase));
}

/// <summary>How a message body is delimited (RFC 9112 §6.3).</summary>
internal enum BodyFraming
{
    /// <summary>No body.</summary>
    None,
    /// <summary>Exactly Content-Length bytes.</summary>
    Length,
    /// <summary>Chunked transfer coding.</summary>
    Chunked,
    /// <summary>Until the sender closes (responses only).</summary>
    UntilClose,
}

/// <summary>A request line and its header fields.</summary>
/// <param name="Method">The method token, as sent.</param>
/// <param name="Target">The origin-form target (path and query).</param>
/// <param name="Minor">The HTTP/1.x minor version.</param>
/// <param name="Headers">The header fields.</param>
/// <param name="HeadBytes">Bytes of the head on the wire.</param>
internal sealed record HttpRequestHead(string Method, string Target, int Minor, HttpHeaders Headers, int HeadBytes)
{
    /// <summary>The target without its query.</summary>
    public string Path => Target.IndexOf('?') is var q and >= 0 ? Target[..q] : Target;

    /// <summary>Whether the client wants the connection kept after the response (RFC 9112 §9.3).</summary>
    public bool KeepAlive => Minor >= 1 ? !Headers.HasToken("Connection", "close") : Headers.HasToken("Connection", "keep-alive");

    /// <summary>Whether the client waits for 100 Continue before sending the body (RFC 9110 §10.1.1).</summary>
    public bool ExpectsContinue => Headers.HasToken("Expect", "100-continue");
}

/// <summary>A status line and its header fields.</summary>
/// <param name="Status">The status code.</param>
/// <param name="Reason">The reason phrase.</param>
/// <param name="Headers">The header fields.</param>
/// <param name="HeadBytes">Bytes of the head on the wire.</param>
internal sealed record HttpResponseHead(int Status, string Reason, HttpHeaders Headers, int HeadBytes);

/// <summary>Header rules: which fields never cross the mediator, framing, and writing heads.</summary>
internal static class Http1
{
    /// <summary>Hop-by-hop fields (RFC 9110 §7.6.1) and proxy fields: never forwarded in either direction.</summary>
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
        "Proxy-Authorization", "Proxy-Authenticate", "Content-Length", "Expect", "Host",
        "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP",
    };

    /// <summary>The prefix of the fields the mediator itself sets; the guest's own are dropped.</summary>
    public const string OwnPrefix = "X-Microagent-";

    /// <summary>Whether a guest's request field may be forwarded upstream (not hop-by-hop, not named by Connection, not ours).</summary>
    public static bool ForwardRequestField(string name, HttpHeaders headers) =>
        !HopByHop.Contains(name) && !name.StartsWith(OwnPrefix, StringComparison.OrdinalIgnoreCase) && !headers.HasToken("Connection", name);

    /// <summary>Whether an upstream response field is passed to the guest (framing fields are rewritten by the mediator).</summary>
    public static bool ForwardResponseField(string name, HttpHeaders headers) =>
        !HopByHop.Contains(name) && !name.StartsWith(OwnPrefix, StringComparison.OrdinalIgnoreCase) && !headers.HasToken("Connection", name);

    /// <summary>A request's body framing (RFC 9112 §6.3); ambiguity is refused (400), a body over the limit 413.</summary>
    public static (BodyFraming Framing, long Length) RequestFraming(HttpHeaders headers, HttpLimits limits)
    {
        var te = headers.All("Transfer-Encoding").ToList();
        var cl = headers.All("Content-Length").ToList();
        if (te.Count > 0)
        {
            if (cl.Count > 0) throw new HttpWireException(400, "both Transfer-Encoding and Content-Length");
            if (te.Count != 1 || !string.Equals(te[0].Trim(), "chunked", StringComparison.OrdinalIgnoreCase))
                throw new HttpWireException(400, "only Transfer-Encoding: chunked is accepted");
            return (BodyFraming.Chunked, -1);
        }
        if (cl.Count == 0) return (BodyFraming.None, 0);
        if (cl.Distinct(StringComparer.Ordinal).Count() != 1 || !TryLength(cl[0], out long n))
            throw new HttpWireException(400, "invalid Content-Length");
        if (n > limits.MaxBodyBytes) throw new HttpWireException(413, $"request body over {limits.MaxBodyBytes} bytes");
        return n == 0 ? (BodyFraming.None, 0) : (BodyFraming.Length, n);
    }

    /// <summary>A response's body framing (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304.</summary>
    public static (BodyFraming Framing, long Length) ResponseFraming(HttpResponseHead head, string requestMethod)
    {
        if (requestMethod == "HEAD" || head.Status is < 200 or 204 or 304) return (BodyFraming.None, 0);
        var te = head.Headers.All("Transfer-Encoding").SelectMany(v => v.Split(',')).Select(t => t.Trim()).ToList();
        if (te.Count > 0)
            return string.Equals(te[^1], "chunked", StringComparison.OrdinalIgnoreCase) ? (BodyFraming.Chunked, -1) : (BodyFraming.UntilClose, -1);
        var cl = head.Headers.All("Content-Length").ToList();
        if (cl.Count == 0) return (BodyFraming.UntilClose, -1);
        if (cl.Distinct(StringComparer.Ordinal).Count() != 1 || !TryLength(cl[0], out long n))
            throw new HttpWireException(502, "the runner sent an invalid Content-Length");
        return n == 0 ? (BodyFraming.None, 0) : (BodyFraming.Length, n);
    }

    private static bool TryLength(string s, out long n)
    {
        s = s.Trim();
        n = 0;
        if (s.Length is 0 or > 18) return false;
        foreach (char c in s)
        {
            if (c is < '0' or > '9') return false;
            n = n * 10 + (c - '0');
        }
        return true;
    }

    /// <summary>Whether <paramref name="c"/> is a tchar (RFC 9110 §5.6.2).</summary>
    public static bool IsTokenChar(char c) =>
        c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9'
            or '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';

    /// <summary>Whether <paramref name="s"/> is a non-empty token.</summary>
    public static bool IsToken(string s) => s.Length > 0 && s.All(IsTokenChar);

    /// <summary>The bytes of a head: <paramref name="startLine"/>, the fields, the blank line (Latin-1, RFC 9110 §5.5).</summary>
    public static byte[] Head(string startLine, IEnumerable<KeyValuePair<string, string>> fields)
    {
        var sb = new StringBuilder(startLine).Append("\r\n");
        foreach (var (k, v) in fields) sb.Append(k).Append(": ").Append(v).Append("\r\n");
        return Encoding.Latin1.GetBytes(sb.Append("\r\n").ToString());
    }

    /// <summary>The standard reason phrase of the statuses the mediator itself sends.</summary>
    public static string Reason(int status) => status switch
    {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
}
