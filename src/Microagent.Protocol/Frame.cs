using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Microagent.Protocol;

/// <summary>
/// Framing for the host ↔ guest protocol (docs/ARCHITECTURE.md "Host-guest protocol"):
/// a 4-byte big-endian payload length followed by that many bytes of UTF-8 JSON.
/// Invariant: a frame longer than <see cref="MaxFrameBytes"/> is rejected before any allocation,
/// so a lying peer cannot make the reader allocate unbounded memory.
/// </summary>
internal static class Frame
{
    /// <summary>Largest accepted payload (16 MiB).</summary>
    public const int MaxFrameBytes = 16 * 1024 * 1024;

    /// <summary>Size of the length prefix.</summary>
    public const int HeaderBytes = 4;

    /// <summary>Serializes <paramref name="value"/> into one frame (prefix + JSON).</summary>
    public static byte[] Encode<T>(T value, JsonTypeInfo<T> typeInfo)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);
        if (json.Length > MaxFrameBytes)
            throw new ProtocolException($"frame of {json.Length} bytes exceeds the {MaxFrameBytes}-byte limit");
        var frame = new byte[HeaderBytes + json.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, json.Length);
        json.CopyTo(frame.AsSpan(HeaderBytes));
        return frame;
    }

    /// <summary>Parses a frame payload (without its prefix).</summary>
    public static T Decode<T>(ReadOnlySpan<byte> payload, JsonTypeInfo<T> typeInfo)
    {
        try
        {
            return JsonSerializer.Deserialize(payload, typeInfo)
                ?? throw new ProtocolException("frame holds JSON null");
        }
        catch (JsonException e)
        {
            throw new ProtocolException($"malformed frame: {e.Message}", e);
        }
    }

    /// <summary>Reads the length prefix; validates it against <paramref name="maxBytes"/> (default <see cref="MaxFrameBytes"/>).</summary>
    public static int ReadLength(ReadOnlySpan<byte> header, int maxBytes = MaxFrameBytes)
    {
        int length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length < 0 || length > maxBytes)
            throw new ProtocolException($"frame length {length} is outside 0..{maxBytes}");
        return length;
    }

    /// <summary>Writes one frame to <paramref name="stream"/>; a payload over <paramref name="maxBytes"/> is a <see cref="ProtocolException"/>.</summary>
    public static async Task WriteAsync<T>(Stream stream, T value, JsonTypeInfo<T> typeInfo, CancellationToken ct = default, int maxBytes = MaxFrameBytes)
    {
        byte[] frame = Encode(value, typeInfo);
        if (frame.Length - HeaderBytes > maxBytes)
            throw new ProtocolException($"frame of {frame.Length - HeaderBytes} bytes exceeds the {maxBytes}-byte limit");
        await stream.WriteAsync(frame, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads one frame from <paramref name="stream"/>. Returns default when the stream ends cleanly
    /// before a frame starts; throws <see cref="ProtocolException"/> when it ends inside one or its length exceeds
    /// <paramref name="maxBytes"/>.
    /// </summary>
    public static async Task<T?> ReadAsync<T>(Stream stream, JsonTypeInfo<T> typeInfo, CancellationToken ct = default, int maxBytes = MaxFrameBytes)
    {
        var header = new byte[HeaderBytes];
        int got = await ReadFullAsync(stream, header, ct).ConfigureAwait(false);
        if (got == 0) return default;
        if (got < HeaderBytes) throw new ProtocolException("stream ended inside a frame header");
        int length = ReadLength(header, maxBytes);
        var payload = new byte[length];
        if (await ReadFullAsync(stream, payload, ct).ConfigureAwait(false) < length)
            throw new ProtocolException("stream ended inside a frame payload");
        return Decode<T>(payload, typeInfo);
    }

    private static async Task<int> ReadFullAsync(Stream stream, Memory<byte> buffer, CancellationToken ct)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = await stream.ReadAsync(buffer[total..], ct).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}

/// <summary>The peer sent something that is not a valid frame or message.</summary>
internal sealed class ProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProtocolException(string message, Exception? inner = null) : base(message, inner) { }
}
