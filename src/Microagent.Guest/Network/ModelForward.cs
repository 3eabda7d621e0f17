using System.Net.Sockets;
using Microagent.Protocol;

namespace Microagent.Guest.Network;

/// <summary>
/// The guest end of the model forward (docs/ARCHITECTURE.md "Model runner"; Microagent.Protocol/Models.cs): a listener on
/// 127.0.0.1:<see cref="ModelInfo.GuestPort"/> that carries each accepted connection, as raw bytes, over a new vsock
/// connection to host port <see cref="ModelInfo.HostPort"/>. Started by the <c>model-forward</c> request; a second request
/// (after a restore, the listener is already there) is a no-op.
/// </summary>
internal static class ModelForward
{
    private static readonly Lock Gate = new();
    private static Socket? _listener;

    /// <summary>Binds the listener once; throws a <see cref="SocketException"/> when the port is taken by something else.</summary>
    public static void Start()
    {
        lock (Gate)
        {
            if (_listener is not null) return;
            _listener = LoopbackListener.Start(ModelInfo.GuestPort, 256, "model forward", ServeAsync);
        }
    }

    private static async Task ServeAsync(Socket client)
    {
        Socket host;
        try { host = await HostChannel.ConnectAsync(ModelInfo.HostPort).ConfigureAwait(false); }
        catch (Exception e)
        {
            Log.Info($"model forward: no host path ({e.GetType().Name}: {e.Message})");
            Splice.Reset(client);
            return;
        }
        try { await Splice.RunAsync(client, host).ConfigureAwait(false); }
        catch (Exception e) { Log.Error($"model forward: {e.Message}"); }
    }
}
