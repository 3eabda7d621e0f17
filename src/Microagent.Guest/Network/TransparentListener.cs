using System.Net;
using System.Net.Sockets;
using Microagent.Interop;
using Microagent.Protocol;

namespace Microagent.Guest.Network;

/// <summary>
/// Where the capture rules send every outbound IPv4 TCP connection (docs/ARCHITECTURE.md "Networking"): for each accepted
/// connection, its original destination (SO_ORIGINAL_DST) goes to the host broker as Frame(EgressRequest) on a new vsock
/// connection; if the verdict allows it, bytes are spliced both ways; otherwise the guest connection is reset.
/// </summary>
internal static class TransparentListener
{
    /// <summary>Loopback port of the listener.</summary>
    public const int Port = 15001;

    /// <summary>Longest the host may take to decide and dial before the guest connection is reset.</summary>
    public static readonly TimeSpan VerdictTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Binds 127.0.0.1:<see cref="Port"/> and accepts for the agent's lifetime.</summary>
    public static void Start() => LoopbackListener.Start(Port, 1024, "egress", ServeAsync);

    private static async Task ServeAsync(Socket client)
    {
        IPEndPoint? destination = OriginalDestination.Of(client);
        if (destination is null)
        {
            Splice.Reset(client); // reached the listener directly, not through the capture rule
            return;
        }
        NetCounters.Captured();
        Socket? host = null;
        try
        {
            host = await HostChannel.ConnectAsync(NetworkInfo.EgressPort).ConfigureAwait(false);
            Stream framing = HostChannel.StreamOf(host);
            using var timeout = new CancellationTokenSource(VerdictTimeout);
            var request = new EgressRequest { Ip = destination.Address.ToString(), Port = destination.Port };
            await Frame.WriteAsync(framing, request, NetworkJson.Default.EgressRequest, timeout.Token).ConfigureAwait(false);
            EgressVerdict? verdict = await Frame.ReadAsync(framing, NetworkJson.Default.EgressVerdict, timeout.Token).ConfigureAwait(false);
            if (verdict is not { Allowed: true })
            {
                Splice.Reset(client);
                host.Dispose();
                return;
            }
        }
        catch (Exception e)
        {
            Log.Info($"egress {destination}: no host path ({e.GetType().Name}: {e.Message})");
            Splice.Reset(client);
            host?.Dispose();
            return;
        }
        try { await Splice.RunAsync(client, host).ConfigureAwait(false); }
        catch (Exception e) { Log.Error($"egress {destination}: {e.Message}"); }
    }
}
