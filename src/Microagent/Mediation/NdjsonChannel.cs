using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Microagent.Mediation;

/// <summary>
/// Reads newline-delimited JSON from a stream. Invariant: at most <see cref="MaxLineBytes"/> bytes are buffered for one line;
/// a longer line (a peer flooding without '\n') fails with <see cref="MediationProtocolException"/> instead of growing memory.
/// Not thread-safe: one reader per stream.
/// </summary>
public sealed class NdjsonReader
{
    /// <summary>Default line bound: 1 MiB.</summary>
    public const int DefaultMaxLineBytes = 1 << 20;

    private readonly Stream _stream;
    private byte[] _buffer;
    private int _start, _end;
    private bool _eof;

    /// <summary>Reads from <paramref name="stream"/>, lines of at most <paramref name="maxLineBytes"/> bytes.</summary>
    public NdjsonReader(Stream stream, int maxLineBytes = DefaultMaxLineBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineBytes, 16);
        _stream = stream;
        MaxLineBytes = maxLineBytes;
        _buffer = new byte[Math.Min(maxLineBytes + 1, 16 * 1024)];
    }

    /// <summary>The line bound.</summary>
    public int MaxLineBytes { get; }

    /// <summary>The next non-empty line (without '\n' or a trailing '\r'), or null at end of stream. A final unterminated line is returned.</summary>
    public async ValueTask<string?> ReadLineAsync(CancellationToken ct = default)
    {
        int scanFrom = _start;
        while (true)
        {
            int nl = Array.IndexOf(_buffer, (byte)'\n', scanFrom, _end - scanFrom);
            if (nl >= 0)
            {
                int len = nl - _start;
                if (len > MaxLineBytes) throw TooLong();
                string line = Decode(_start, len);
                _start = nl + 1;
                scanFrom = _start;
                if (line.Length == 0) continue;
                return line;
            }
            if (_end - _start > MaxLineBytes) throw TooLong();
            if (_eof)
            {
                if (_end == _start) return null;
                string last = Decode(_start, _end - _start);
                _start = _end;
                return last.Length == 0 ? null : last;
            }
            scanFrom = _end;
            if (_start > 0 && _end == _buffer.Length)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                scanFrom -= _start;
                _end -= _start;
                _start = 0;
            }
            if (_end == _buffer.Length)
            {
                var bigger = new byte[Math.Min((long)_buffer.Length * 2, MaxLineBytes + 1L) is var n && n > _buffer.Length ? n : _buffer.Length + 1];
                Buffer.BlockCopy(_buffer, 0, bigger, 0, _end);
                _buffer = bigger;
            }
            int read = await _stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (read == 0) _eof = true;
            else _end += read;
        }
    }

    /// <summary>The next line parsed as a mediation message (null at end of stream).</summary>
    public async ValueTask<MediationMessage?> ReadMessageAsync(CancellationToken ct = default) =>
        await ReadLineAsync(ct).ConfigureAwait(false) is { } line ? MediationMessage.Parse(line) : null;

    private string Decode(int start, int len)
    {
        if (len > 0 && _buffer[start + len - 1] == '\r') len--;
        return Encoding.UTF8.GetString(_buffer, start, len);
    }

    private MediationProtocolException TooLong() =>
        new($"a mediation line exceeds {MaxLineBytes} bytes without a newline: the peer is not speaking newline-delimited JSON (or floods)");
}

/// <summary>Writes newline-delimited JSON to a stream; safe to call from several tasks (one line is never interleaved with another).</summary>
public sealed class NdjsonWriter(Stream stream) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Writes a request.</summary>
    public Task WriteAsync(WorkRequest m, CancellationToken ct = default) => WriteRawAsync(JsonSerializer.SerializeToUtf8Bytes(m, MediationJson.Default.WorkRequest), ct);
    /// <summary>Writes a result.</summary>
    public Task WriteAsync(WorkResult m, CancellationToken ct = default) => WriteRawAsync(JsonSerializer.SerializeToUtf8Bytes(m, MediationJson.Default.WorkResult), ct);
    /// <summary>Writes a signal.</summary>
    public Task WriteAsync(LifecycleSignal m, CancellationToken ct = default) => WriteRawAsync(JsonSerializer.SerializeToUtf8Bytes(m, MediationJson.Default.LifecycleSignal), ct);
    /// <summary>Writes a constraint ack.</summary>
    public Task WriteAsync(ConstraintAck m, CancellationToken ct = default) => WriteRawAsync(JsonSerializer.SerializeToUtf8Bytes(m, MediationJson.Default.ConstraintAck), ct);

    /// <summary>Writes one JSON document (which must not contain a raw newline: serialized JSON never does) and '\n', then flushes.</summary>
    public async Task WriteRawAsync(ReadOnlyMemory<byte> json, CancellationToken ct = default)
    {
        if (json.Span.IndexOf((byte)'\n') >= 0) throw new ArgumentException("a mediation message must be a single line", nameof(json));
        var line = ArrayPool<byte>.Shared.Rent(json.Length + 1);
        try
        {
            json.CopyTo(line);
            line[json.Length] = (byte)'\n';
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await stream.WriteAsync(line.AsMemory(0, json.Length + 1), ct).ConfigureAwait(false);
                await stream.FlushAsync(ct).ConfigureAwait(false);
            }
            finally { _gate.Release(); }
        }
        finally { ArrayPool<byte>.Shared.Return(line); }
    }

    /// <inheritdoc/>
    public void Dispose() => _gate.Dispose();
}

/// <summary>One parsed line, told apart by shape: <c>signal</c> → signal; <c>constraints_version</c> without <c>request_id</c> → ack; <c>request_id</c> with <c>status</c> → result; <c>request_id</c> → request.</summary>
public sealed record MediationMessage
{
    /// <summary>The line as received.</summary>
    public required string Raw { get; init; }
    /// <summary>Set when the line is a signal.</summary>
    public LifecycleSignal? Signal { get; init; }
    /// <summary>Set when the line is a result.</summary>
    public WorkResult? Result { get; init; }
    /// <summary>Set when the line is a request.</summary>
    public WorkRequest? Request { get; init; }
    /// <summary>Set when the line is a constraint ack.</summary>
    public ConstraintAck? Ack { get; init; }

    /// <summary>Classifies and parses one line; <see cref="MediationProtocolException"/> when it is not one of the shapes.</summary>
    public static MediationMessage Parse(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new MediationProtocolException($"a mediation line is not a JSON object: {Clip(line)}");
            bool Has(string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;
            if (Has("signal")) return new() { Raw = line, Signal = root.Deserialize(MediationJson.Default.LifecycleSignal) };
            if (Has("request_id") && Has("status")) return new() { Raw = line, Result = root.Deserialize(MediationJson.Default.WorkResult) };
            if (Has("request_id")) return new() { Raw = line, Request = root.Deserialize(MediationJson.Default.WorkRequest) };
            if (Has("constraints_version")) return new() { Raw = line, Ack = root.Deserialize(MediationJson.Default.ConstraintAck) };
            throw new MediationProtocolException($"a mediation line has none of signal, request_id, constraints_version: {Clip(line)}");
        }
        catch (JsonException e) { throw new MediationProtocolException($"a mediation line is not valid JSON ({e.Message}): {Clip(line)}"); }
    }

    private static string Clip(string s) => s.Length <= 200 ? s : s[..200] + "…";
}
