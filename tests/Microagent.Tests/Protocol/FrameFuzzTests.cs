using System.Buffers.Binary;
using System.Text;
using Microagent.Protocol;

namespace Microagent.Tests.Protocol;

/// <summary>Whatever bytes arrive, decoding yields a message, a clean end, or a ProtocolException — nothing else.</summary>
public sealed class FrameFuzzTests
{
    private static async Task<Exception?> TryRead(byte[] bytes)
    {
        try
        {
            using var ms = new MemoryStream(bytes);
            await Frame.ReadAsync(ms, ProtocolJson.Default.Request);
            return null;
        }
        catch (Exception e) { return e; }
    }

    private static byte[] Framed(byte[] payload)
    {
        var frame = new byte[4 + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, payload.Length);
        payload.CopyTo(frame, 4);
        return frame;
    }

    private static byte[] ValidExec() => Frame.Encode(new Request
    {
        Type = RequestTypes.Exec,
        Exec = new ExecRequest { Argv = ["sh", "-c", "echo hi"], Env = ["A=B"], Stdin = [1, 2, 3], TimeoutMs = 5, Mode = ExecModes.Stream },
    }, ProtocolJson.Default.Request);

    [Fact]
    public async Task RandomBytesOnlyEverThrowProtocolException()
    {
        var rng = new Random(1234);
        for (int i = 0; i < 5000; i++)
        {
            var bytes = new byte[rng.Next(0, 64)];
            rng.NextBytes(bytes);
            if (bytes.Length >= 4 && rng.Next(2) == 0) BinaryPrimitives.WriteInt32BigEndian(bytes, bytes.Length - 4);
            Exception? e = await TryRead(bytes);
            Assert.True(e is null or ProtocolException, $"input {Convert.ToHexString(bytes)} threw {e}");
        }
    }

    [Fact]
    public async Task MutatedValidFramesOnlyEverThrowProtocolException()
    {
        var rng = new Random(99);
        byte[] valid = ValidExec();
        string[] tokens = ["{", "}", "[", "]", "\"", ":", ",", "null", "true", "-1", "1e999", "\"v\":", "\"exec\":", "\"argv\":", "\\u0000", "\"stdin\":\"!!\"", "\xff"];
        for (int i = 0; i < 5000; i++)
        {
            byte[] payload = valid[4..];
            int mutations = rng.Next(1, 4);
            for (int m = 0; m < mutations; m++)
            {
                int at = rng.Next(payload.Length);
                payload = rng.Next(3) switch
                {
                    0 => [.. payload[..at], (byte)rng.Next(256), .. payload[(at + 1)..]],
                    1 => [.. payload[..at], .. payload[Math.Min(payload.Length, at + rng.Next(1, 8))..]],
                    _ => [.. payload[..at], .. Encoding.Latin1.GetBytes(tokens[rng.Next(tokens.Length)]), .. payload[at..]],
                };
            }
            Exception? e = await TryRead(Framed(payload));
            Assert.True(e is null or ProtocolException, $"payload {Encoding.Latin1.GetString(payload)} threw {e}");
        }
    }

    [Fact]
    public async Task EveryTruncationOfAValidFrameIsAProtocolException()
    {
        byte[] valid = ValidExec();
        Assert.Null(await TryRead(valid));
        Assert.Null(await TryRead([])); // clean end before a frame
        for (int len = 1; len < valid.Length; len++)
            Assert.IsType<ProtocolException>(await TryRead(valid[..len]));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData(Frame.MaxFrameBytes + 1)]
    [InlineData(int.MaxValue)]
    public async Task OutOfRangeLengthsAreRejectedBeforeAllocation(int length)
    {
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, length);
        Assert.IsType<ProtocolException>(await TryRead(header));
    }

    [Theory]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("42")]
    [InlineData("\"text\"")]
    [InlineData("{\"type\":5}")]
    [InlineData("{\"exec\":{\"argv\":\"notarray\"}}")]
    [InlineData("{\"exec\":{\"argv\":[null]}}")]
    [InlineData("{\"data\":\"not base64!\"}")]
    [InlineData("{\"v\":1.5}")]
    [InlineData("{\"v\":99999999999}")]
    [InlineData("{\"exec\":{\"timeoutMs\":\"soon\"}}")]
    [InlineData("{} trailing")]
    [InlineData("")]
    public void WrongShapesAreProtocolExceptions(string json)
    {
        Exception? e = Record.Exception(() => Frame.Decode(Encoding.UTF8.GetBytes(json), ProtocolJson.Default.Request));
        Assert.True(e is null or ProtocolException, $"{json} threw {e}");
    }

    [Fact]
    public void DeepNestingIsAProtocolException()
    {
        string json = "{\"exec\":" + new string('[', 10_000) + new string(']', 10_000) + "}";
        Assert.IsType<ProtocolException>(Record.Exception(() => Frame.Decode(Encoding.UTF8.GetBytes(json), ProtocolJson.Default.Request)));
    }

    [Fact]
    public void InvalidUtf8IsAProtocolException()
    {
        byte[] payload = [.. "{\"type\":\""u8, 0xff, 0xfe, .. "\"}"u8];
        Exception? e = Record.Exception(() => Frame.Decode(payload, ProtocolJson.Default.Request));
        Assert.IsType<ProtocolException>(e);
    }

    [Fact]
    public async Task RoundTripPreservesEveryField()
    {
        var response = new Response
        {
            Type = ResponseTypes.Result,
            Result = new ExecResult { Status = ExecStatuses.Signaled, ExitCode = 137, Signal = 9, Stdout = [0, 255], StdoutTruncated = true, DurationMs = 12, Error = "e" },
        };
        using var ms = new MemoryStream();
        await Frame.WriteAsync(ms, response, ProtocolJson.Default.Response);
        ms.Position = 0;
        Response back = (await Frame.ReadAsync(ms, ProtocolJson.Default.Response))!;
        Assert.Equal((137, 9, true, "e"), (back.Result!.ExitCode, back.Result.Signal, back.Result.StdoutTruncated, back.Result.Error));
        Assert.Equal(new byte[] { 0, 255 }, back.Result.Stdout);
        Assert.Null(await Frame.ReadAsync(ms, ProtocolJson.Default.Response));
    }
}
