using System.Text;
using Microagent.Interop;

namespace Microagent.Cli;

/// <summary>
/// Reads a secret typed on the terminal on stdin, like getpass(3): echo is off before the prompt is shown and the saved
/// terminal settings come back afterwards, also on Ctrl-C, on cancellation and on errors (docs/ARCHITECTURE.md "Command line").
/// </summary>
internal static class PasswordPrompt
{
    private const int Stdin = 0, Stderr = 2;

    /// <summary>Whether stdin is a terminal to prompt on.</summary>
    public static bool Available => Terminal.IsTerminal(Stdin);

    /// <summary>
    /// Shows <paramref name="prompt"/> on stderr and returns the line typed up to Enter (Backspace and Ctrl-U edit it;
    /// Ctrl-D on an empty line ends it). Ctrl-C, Ctrl-\ or <paramref name="ct"/> throw <see cref="OperationCanceledException"/>.
    /// </summary>
    public static string Read(string prompt, CancellationToken ct)
    {
        using var input = new SafeFileDescriptor(Stdin, ownsHandle: false);
        using var error = new SafeFileDescriptor(Stderr, ownsHandle: false);
        var (wakeRead, wakeWrite) = FileDescriptors.Pipe(FileDescriptors.O_CLOEXEC | FileDescriptors.O_NONBLOCK);
        using (wakeRead)
        using (wakeWrite)
        using (ct.Register(() => { try { FileDescriptors.WriteAll(wakeWrite, [1]); } catch (IOException) { } }))
        using (Terminal.EnterSecretInput(Stdin))
        {
            var line = new SecretLine();
            try
            {
                FileDescriptors.WriteAll(error, Encoding.UTF8.GetBytes(prompt));
                Span<byte> chunk = stackalloc byte[256];
                Span<short> revents = stackalloc short[2];
                while (true)
                {
                    Poll.WaitReadable([input, wakeRead], revents, -1);
                    if (revents[1] != 0) throw new OperationCanceledException(ct);
                    if (revents[0] == 0) continue;
                    int n = FileDescriptors.Read(input, chunk);
                    bool done = n == 0 || line.Feed(chunk[..n]);
                    chunk.Clear();
                    if (done) return line.Take();
                }
            }
            finally
            {
                line.Clear();
                FileDescriptors.WriteAll(error, "\n"u8);
            }
        }
    }
}

/// <summary>The bytes of a secret as typed, with the few editing keys a raw terminal leaves to the reader.</summary>
internal sealed class SecretLine
{
    private byte[] _bytes = new byte[64];
    private int _length;

    /// <summary>Adds typed bytes; true once the line is complete (Enter, or Ctrl-D on an empty line). Ctrl-C and Ctrl-\ throw.</summary>
    public bool Feed(ReadOnlySpan<byte> typed)
    {
        foreach (byte b in typed)
        {
            switch (b)
            {
                case (byte)'\r' or (byte)'\n': return true;
                case 0x03 or 0x1c: throw new OperationCanceledException(); // Ctrl-C, Ctrl-\ (ISIG is off while reading)
                case 0x04: if (_length == 0) return true; break;             // Ctrl-D
                case 0x15: Array.Clear(_bytes, 0, _length); _length = 0; break; // Ctrl-U
                case 0x7f or 0x08:                                           // Backspace: one UTF-8 character
                    while (_length > 0 && (_bytes[--_length] & 0xC0) == 0x80) _bytes[_length] = 0;
                    _bytes[_length] = 0;
                    break;
                default:
                    if (_length == _bytes.Length)
                    {
                        var grown = new byte[_bytes.Length * 2];
                        _bytes.AsSpan(0, _length).CopyTo(grown);
                        Array.Clear(_bytes);
                        _bytes = grown;
                    }
                    _bytes[_length++] = b;
                    break;
            }
        }
        return false;
    }

    /// <summary>The line as text.</summary>
    public string Take() => Encoding.UTF8.GetString(_bytes, 0, _length);

    /// <summary>Wipes the bytes.</summary>
    public void Clear() { Array.Clear(_bytes); _length = 0; }
}
