using System.Net;
using System.Net.Sockets;

namespace Microagent.Guest.Network;

/// <summary>
/// A guest TCP listener on 127.0.0.1 whose accepted connections are each served on their own task (docs/ARCHITECTURE.md
/// "Networking", "Model runner"): the one accept loop behind <see cref="TransparentListener"/> and <see cref="ModelForward"/>.
/// An accept error is logged and retried after a short pause; the loop runs for the agent's lifetime.
/// </summary>
internal static class LoopbackListener
{
    /// <summary>
    /// Binds 127.0.0.1:<paramref name="port"/> (SO_REUSEADDR, backlog <paramref name="backlog"/>) and starts accepting, handing
    /// each connection to <paramref name="serve"/>; throws a <see cref="SocketException"/> when the port is taken.
    /// <paramref name="label"/> names the listener in log lines.
    /// </summary>
    public static Socket Start(int port, int backlog, string label, Func<Socket, Task> serve)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
            listener.Listen(backlog);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _ = Task.Run(() => AcceptLoopAsync(listener, label, serve));
        return listener;
    }

    private static async Task AcceptLoopAsync(Socket listener, string label, Func<Socket, Task> serve)
    {
        while (true)
        {
            Socket client;
            try { client = await listener.AcceptAsync().ConfigureAwait(false); }
            catch (SocketException e)
            {
                Log.Error($"{label} accept: {e.Message}");
                await Task.Delay(100).ConfigureAwait(false);
                continue;
            }
            _ = Task.Run(() => serve(client));
        }
    }
}
