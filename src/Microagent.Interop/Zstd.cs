using System.Runtime.InteropServices;

namespace Microagent.Interop;

/// <summary>
/// Streaming zstd decompression through the system <c>libzstd.so.1</c> (Debian package libzstd1;
/// API of <c>zstd.h</c>: ZSTD_createDStream, ZSTD_decompressStream). One instance per stream; not thread-safe.
/// </summary>
internal sealed unsafe partial class ZstdDecompressor : IDisposable
{
    private const string Lib = "libzstd.so.1";

    [StructLayout(LayoutKind.Sequential)]
    private struct Buffer
    {
        public void* Data;
        public nuint Size;
        public nuint Pos;
    }

    [LibraryImport(Lib, EntryPoint = "ZSTD_createDStream")]
    private static partial nint CreateDStream();

    [LibraryImport(Lib, EntryPoint = "ZSTD_freeDStream")]
    private static partial nuint FreeDStream(nint stream);

    [LibraryImport(Lib, EntryPoint = "ZSTD_initDStream")]
    private static partial nuint InitDStream(nint stream);

    [LibraryImport(Lib, EntryPoint = "ZSTD_decompressStream")]
    private static partial nuint DecompressStream(nint stream, Buffer* output, Buffer* input);

    [LibraryImport(Lib, EntryPoint = "ZSTD_isError")]
    private static partial uint IsError(nuint code);

    [LibraryImport(Lib, EntryPoint = "ZSTD_getErrorName")]
    private static partial nint GetErrorName(nuint code);

    private nint _stream;

    /// <summary>Creates a decompression context; throws <see cref="DllNotFoundException"/> when libzstd is missing.</summary>
    public ZstdDecompressor()
    {
        _stream = CreateDStream();
        if (_stream == 0) throw new OutOfMemoryException("ZSTD_createDStream failed");
        Check(InitDStream(_stream));
    }

    /// <summary>
    /// Decompresses from <paramref name="input"/> into <paramref name="output"/>. Returns libzstd's
    /// hint: 0 when a frame is complete and fully flushed. Throws <see cref="InvalidDataException"/> on corrupt input.
    /// </summary>
    public nuint Decompress(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int produced)
    {
        ObjectDisposedException.ThrowIf(_stream == 0, this);
        fixed (byte* inPtr = input)
        fixed (byte* outPtr = output)
        {
            var inBuf = new Buffer { Data = inPtr, Size = (nuint)input.Length, Pos = 0 };
            var outBuf = new Buffer { Data = outPtr, Size = (nuint)output.Length, Pos = 0 };
            nuint rc = DecompressStream(_stream, &outBuf, &inBuf);
            Check(rc);
            consumed = (int)inBuf.Pos;
            produced = (int)outBuf.Pos;
            return rc;
        }
    }

    private static void Check(nuint rc)
    {
        if (IsError(rc) != 0)
            throw new InvalidDataException("zstd: " + (Marshal.PtrToStringUTF8(GetErrorName(rc)) ?? "error"));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_stream != 0) { FreeDStream(_stream); _stream = 0; }
    }
}
