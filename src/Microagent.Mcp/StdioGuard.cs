using System.IO.Pipelines;
using System.Text;
using System.Text.Json;

namespace Microagent.Mcp;

/// <summary>
/// Sits between stdio and the MCP transport (stdio framing: one JSON-RPC message per line).
/// Invariants: every line that reaches the transport parses as JSON; a line that does not is answered with a
/// JSON-RPC parse error (id null, code -32700) and serving continues; a line longer than
/// <see cref="MaxLineBytes"/> is answered the same way without being buffered whole; end of input ends the transport.
/// Output is written in whole lines under one lock, so our error lines never interleave with the transport's messages.
/// </summary>
internal static class StdioGuard
{
    /// <summary>Longest accepted message line.</summary>
    public const int MaxLineBytes = 16 * 1024 * 1024;

    public static async Task PumpAsync(Stream input, PipeWriter toTransport, LineWriter output, CancellationToken ct)
    {
        var line = new MemoryStream();
        bool oversized = false;
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await input.ReadAsync(buffer, ct).ConfigureAwait(false);
                if (n == 0) break;
                int start = 0;
                for (int i = 0; i < n; i++)
                {
                    if (buffer[i] != (byte)'\n') continue;
                    if (!oversized) line.Write(buffer, start, i - start);
                    await DeliverAsync(line, oversized, toTransport, output, ct).ConfigureAwait(false);
                    line.SetLength(0);
                    oversized = false;
                    start = i + 1;
                }
                if (!oversized)
                {
                    line.Write(buffer, start, n - start);
                    if (line.Length > MaxLineBytes) { oversized = true; line.SetLength(0); }
                }
            }
            if (line.Length > 0 || oversized) await DeliverAsync(line, oversized, toTransport, output, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
        finally
        {
            await toTransport.CompleteAsync().ConfigureAwait(false);
        }
    }

    private static async Task DeliverAsync(MemoryStream line, bool oversized, PipeWriter toTransport, LineWriter output, CancellationToken ct)
    {
        var bytes = line.GetBuffer().AsMemory(0, (int)line.Length);
        if (!oversized && IsBlank(bytes.Span)) return;
        string? problem = oversized ? $"message longer than {MaxLineBytes} bytes" : Validate(bytes.Span);
        if (problem is not null)
        {
            string message = System.Text.Json.Nodes.JsonValue.Create("Parse error: " + problem).ToJsonString();
            string error = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":" + message + "}}";
            output.WriteLine(Encoding.UTF8.GetBytes(error));
            return;
        }
        await toTransport.WriteAsync(bytes, ct).ConfigureAwait(false);
        await toTransport.WriteAsync("\n"u8.ToArray(), ct).ConfigureAwait(false);
    }

    private static bool IsBlank(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r')) return false;
        return true;
    }

    private static string? Validate(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 256 });
            while (reader.Read()) { }
            return null;
        }
        catch (JsonException e)
        {
            return e.Message;
        }
    }
}

/// <summary>A write-only stream that forwards only complete lines, each under one lock.</summary>
internal sealed class LineWriter(Stream inner) : Stream
{
    private readonly object _gate = new();
    private readonly MemoryStream _pending = new();

    public void WriteLine(ReadOnlySpan<byte> line)
    {
        lock (_gate)
        {
            inner.Write(line);
            inner.WriteByte((byte)'\n');
            inner.Flush();
        }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        lock (_gate)
        {
            int start = 0;
            for (int i = 0; i < buffer.Length; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                _pending.Write(buffer[start..(i + 1)]);
                inner.Write(_pending.GetBuffer(), 0, (int)_pending.Length);
                _pending.SetLength(0);
                start = i + 1;
            }
            _pending.Write(buffer[start..]);
            if (start > 0) inner.Flush();
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override void Flush() { lock (_gate) inner.Flush(); }
    public override Task FlushAsync(CancellationToken cancellationToken) { Flush(); return Task.CompletedTask; }
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
