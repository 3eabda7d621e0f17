using System.Net.Sockets;
using Microagent.Interop;

namespace Microagent.Guest.Server;

/// <summary>Accept loops that hand each connection to a handler (<see cref="AgentServer.HandleAsync"/>, <see cref="ConsoleServer.HandleAsync"/>).</summary>
internal static class Listeners
{
    /// <summary>Dev mode: serves on a unix socket at <paramref name="path"/> until <paramref name="ct"/> fires.</summary>
    public static Task ServeUnixAsync(string path, AgentServer server, CancellationToken ct) => ServeUnixAsync(path, server.HandleAsync, ct);

    /// <summary>Dev mode: serves <paramref name="handle"/> on a unix socket at <paramref name="path"/> until <paramref name="ct"/> fires.</summary>
    public static async Task ServeUnixAsync(string path, Func<Stream, Task> handle, CancellationToken ct)
    {
        if (File.Exists(path)) File.Delete(path);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(512);
        Log.Info($"listening on unix:{path}");
        try
        {
            while (true)
            {
                Socket s = await listener.AcceptAsync(ct).ConfigureAwait(false);
                _ = Task.Run(() => handle(new NetworkStream(s, ownsSocket: true)));
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Guest mode: listens on vsock (any CID, <paramref name="port"/>) and serves on a dedicated accept thread.</summary>
    public static void StartVsock(uint port, AgentServer server) => StartVsock(port, server.HandleAsync);

    /// <summary>Guest mode: listens on vsock (any CID, <paramref name="port"/>) and hands each connection to <paramref name="handle"/>.</summary>
    public static void StartVsock(uint port, Func<Stream, Task> handle)
    {
        SafeFileDescriptor listenFd = Vsock.Listen(Vsock.VMADDR_CID_ANY, port); // lives as long as the agent
        Log.Info($"listening on vsock port {port}");
        new Thread(() =>
        {
            while (true)
            {
                try
                {
                    Stream connection = WrapConnected(Vsock.Accept(listenFd));
                    _ = Task.Run(() => handle(connection));
                }
                catch (Exception e)
                {
                    Log.Error($"vsock accept: {e.Message}");
                    Thread.Sleep(100);
                }
            }
        }, 256 * 1024) { IsBackground = true, Name = $"vsock-accept-{port}" }.Start();
    }

    /// <summary>Moves a connected stream-socket descriptor (any family, AF_VSOCK included) into a Stream that owns it.</summary>
    public static Stream WrapConnected(SafeFileDescriptor fd) => new SocketStream(Sockets.Adopt(fd));
}
