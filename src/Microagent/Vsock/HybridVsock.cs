using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microagent.Errors;

namespace Microagent.Vsock;

/// <summary>
/// The hybrid vsock handshake (docs/ARCHITECTURE.md "Vsock"; the wire format of Firecracker's docs/vsock.md,
/// "Host-Initiated Connections"): a host client connects to the hybrid unix socket, writes <c>CONNECT &lt;port&gt;\n</c>
/// (port in decimal, no sign, no spaces) and, once the guest accepted, reads <c>OK &lt;hostport&gt;\n</c>; both lines are ASCII
/// and at most <see cref="MaxLineLength"/> bytes. The client side, and the parsing the muxer uses.
/// </summary>
internal static class HybridVsock
{
    /// <summary>Longest handshake line accepted either way.</summary>
    internal const int MaxLineLength = 64;

    /// <summary>
    /// Connects to guest port <paramref name="port"/> through the backend's hybrid socket: writes <c>CONNECT &lt;port&gt;\n</c>,
    /// reads <c>OK &lt;hostport&gt;\n</c>, and returns the stream positioned after that line.
    /// Throws <see cref="MicroagentException"/> (<see cref="ErrorKind.Transient"/>) when the backend is absent or the guest refuses or resets.
    /// </summary>
    public static async Task<Stream> ConnectAsync(string hybridSocketPath, uint port, CancellationToken ct = default)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            try { await socket.ConnectAsync(new UnixDomainSocketEndPoint(hybridSocketPath), ct).ConfigureAwait(false); }
            catch (SocketException e)
            {
                throw MicroagentException.Transient($"cannot reach the vsock backend at {hybridSocketPath}: {e.Message}",
                    "check that the workspace is running", e);
            }
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), SocketFlags.None, ct).ConfigureAwait(false);
            string? line = await ReadLineAsync(socket, ct).ConfigureAwait(false);
            if (line is null || !line.StartsWith("OK ", StringComparison.Ordinal)
                || !uint.TryParse(line.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                throw MicroagentException.Transient($"the guest refused or reset the vsock connection to port {port}",
                    "check that the guest is up and listening on that port, then retry");
            }
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw MicroagentException.Transient($"vsock connection to port {port} failed: {e.Message}", "retry once the guest is up", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads one '\n'-terminated ASCII line byte by byte (never past the newline); null at end of stream or when too long.</summary>
    internal static async Task<string?> ReadLineAsync(Socket socket, CancellationToken ct)
    {
        var buffer = new byte[MaxLineLength];
        int length = 0;
        while (length < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(length, 1), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) return null;
            if (buffer[length] == (byte)'\n') return Encoding.ASCII.GetString(buffer, 0, length);
            length++;
        }
        return null;
    }

    /// <summary>The line a hybrid client reads once the guest accepted: <c>OK &lt;hostPort&gt;\n</c>.</summary>
    internal static byte[] OkLine(uint hostPort) => Encoding.ASCII.GetBytes($"OK {hostPort}\n");

    /// <summary>Parses <c>CONNECT &lt;port&gt;</c> (without the newline); false when malformed.</summary>
    internal static bool TryParseConnect(string line, out uint port)
    {
        port = 0;
        return line.StartsWith("CONNECT ", StringComparison.Ordinal)
            && uint.TryParse(line.AsSpan(8), NumberStyles.None, CultureInfo.InvariantCulture, out port);
    }
}
