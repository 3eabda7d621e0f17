using Microagent.Guest.Server;
using Microagent.Interop;
using Microagent.Protocol;

namespace Microagent.Guest.Init;

/// <summary>Announces readiness: one <c>hello</c> frame to the host (CID 2) on <see cref="ProtocolInfo.ReadyPort"/>.</summary>
internal static class Ready
{
    /// <summary>Builds the hello message.</summary>
    public static Response BuildHello(long agentInitMs) => new()
    {
        Type = ResponseTypes.Hello,
        Hello = new Hello
        {
            AgentVersion = AgentInfo.Version,
            Kernel = ReadOrEmpty("/proc/sys/kernel/osrelease").Trim(),
            UptimeMs = UptimeMs(),
            AgentInitMs = agentInitMs,
        },
    };

    /// <summary>Sends hello, retrying briefly; logs and gives up (the agent keeps serving) when the host does not answer.</summary>
    public static void Announce(Response hello)
    {
        const int attempts = 6;
        for (int i = 1; i <= attempts; i++)
        {
            try
            {
                using Stream s = Listeners.WrapConnected(Vsock.Connect(Vsock.VMADDR_CID_HOST, ProtocolInfo.ReadyPort));
                Frame.WriteAsync(s, hello, ProtocolJson.Default.Response).GetAwaiter().GetResult();
                Log.Info($"ready: hello sent to host port {ProtocolInfo.ReadyPort} (agent init {hello.Hello!.AgentInitMs} ms, uptime {hello.Hello.UptimeMs} ms)");
                return;
            }
            catch (Exception e)
            {
                if (i == attempts)
                {
                    Log.Error($"could not send hello to host port {ProtocolInfo.ReadyPort}: {e.Message}; serving anyway");
                    return;
                }
                Thread.Sleep(50 * i);
            }
        }
    }

    /// <summary>Milliseconds since boot, from /proc/uptime.</summary>
    public static long UptimeMs()
    {
        string text = ReadOrEmpty("/proc/uptime");
        int space = text.IndexOf(' ');
        return space > 0 && double.TryParse(text[..space], System.Globalization.CultureInfo.InvariantCulture, out double s) ? (long)(s * 1000) : 0;
    }

    private static string ReadOrEmpty(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }
}
