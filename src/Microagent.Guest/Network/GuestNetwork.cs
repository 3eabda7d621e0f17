using System.Net;
using System.Net.Sockets;
using Microagent.Interop;
using Microagent.Protocol;

namespace Microagent.Guest.Network;

/// <summary>
/// Sets up the guest's network on the host's <c>network</c> request (docs/ARCHITECTURE.md "Networking"). The guest has no
/// NIC. <c>isolated</c>: loopback up, nothing else. <c>user</c>: loopback up; a <c>dummy</c> interface with an address and
/// IPv4 and IPv6 default routes, so a packet nothing carries (UDP other than DNS, ICMP, IPv6) leaves by it, is dropped
/// and counted; the capture rules (<see cref="CaptureRules"/>) send outbound IPv4 TCP to <see cref="TransparentListener"/> and
/// DNS to <see cref="DnsStub"/>; /etc/resolv.conf names the stub. Idempotent: a second request (a restore) re-applies.
/// </summary>
internal static class GuestNetwork
{
    /// <summary>The dummy interface (the dummy module creates <c>dummy0</c> when it loads).</summary>
    public const string DummyDevice = "dummy0";
    /// <summary>The guest's IPv4 address on it (the source of its connections).</summary>
    public static readonly IPAddress Ipv4 = IPAddress.Parse("10.0.2.15");
    /// <summary>The guest's IPv6 address on it (unique local).</summary>
    public static readonly IPAddress Ipv6 = IPAddress.Parse("fd00:6d61::2");

    private const string ResolvConf = "/etc/resolv.conf";
    private static readonly Lock Gate = new();
    private static bool _listening;

    /// <summary>The mode set up last; null before the first request.</summary>
    public static string? Mode { get; private set; }

    /// <summary>Applies <paramref name="mode"/>; throws with the failing step.</summary>
    public static void Apply(string mode)
    {
        lock (Gate)
        {
            if (mode is not (NetworkInfo.ModeUser or NetworkInfo.ModeIsolated))
                throw new ArgumentException($"unknown network mode '{mode}' (user or isolated)");
            // Dev mode (--listen-unix) runs on a host: never load modules or rewrite routes, firewall or resolv.conf there.
            if (Environment.ProcessId != 1)
                throw new NotSupportedException("the network is set up only by the agent as PID 1 of a workspace VM");
            var lo = new NetlinkWriter();
            RouteMessages.SetUp(lo, 1, "lo");
            NetlinkChannel.Execute(Netlink.NETLINK_ROUTE, lo, "set lo up");
            if (mode == NetworkInfo.ModeIsolated) TearDownUser();
            else SetUpUser();
            Mode = mode;
        }
    }

    private static void SetUpUser()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        NetworkModules.LoadAll();
        long modulesMs = clock.ElapsedMilliseconds;
        var link = new NetlinkWriter();
        RouteMessages.AddLink(link, 1, DummyDevice, "dummy");
        NetlinkChannel.Execute(Netlink.NETLINK_ROUTE, link, $"create {DummyDevice}", e => e == Errno.EEXIST);
        // No IPv6 link-local address: it would send router solicitations and MLD reports into the drop counter unasked.
        try { File.WriteAllText($"/proc/sys/net/ipv6/conf/{DummyDevice}/addr_gen_mode", "1"); }
        catch (IOException e) { Log.Error($"{DummyDevice} addr_gen_mode: {e.Message}"); }
        var up = new NetlinkWriter();
        RouteMessages.SetUp(up, 1, DummyDevice);
        NetlinkChannel.Execute(Netlink.NETLINK_ROUTE, up, $"set {DummyDevice} up");

        int index = InterfaceIndex(DummyDevice);
        var addr = new NetlinkWriter();
        RouteMessages.AddAddress(addr, 1, index, Ipv4, 32);
        RouteMessages.AddAddress(addr, 2, index, Ipv6, 128);
        RouteMessages.AddDefaultRoute(addr, 3, index, AddressFamily.InterNetwork);
        RouteMessages.AddDefaultRoute(addr, 4, index, AddressFamily.InterNetworkV6);
        NetlinkChannel.Execute(Netlink.NETLINK_ROUTE, addr, $"address and routes on {DummyDevice}", e => e == Errno.EEXIST);

        if (!_listening)
        {
            TransparentListener.Start();
            DnsStub.Start();
            _listening = true;
        }
        long linksMs = clock.ElapsedMilliseconds - modulesMs;
        NetlinkChannel.Execute(Netlink.NETLINK_NETFILTER, CaptureRules.Build(TransparentListener.Port, DnsStub.Port), "nf_tables capture rules");
        WriteResolvConf();
        Log.Info($"network user: modules {modulesMs} ms, device and routes {linksMs} ms, capture rules {clock.ElapsedMilliseconds - modulesMs - linksMs} ms");
    }

    private static void TearDownUser()
    {
        if (Directory.Exists("/sys/module/nf_tables"))
            NetlinkChannel.Execute(Netlink.NETLINK_NETFILTER, CaptureRules.BuildRemoval(), "remove the capture rules");
        if (Directory.Exists($"/sys/class/net/{DummyDevice}"))
        {
            var del = new NetlinkWriter();
            RouteMessages.DeleteLink(del, 1, DummyDevice);
            NetlinkChannel.Execute(Netlink.NETLINK_ROUTE, del, $"delete {DummyDevice}");
        }
    }

    /// <summary>Packets that left by the dummy interface (every one is dropped there): its tx_packets counter.</summary>
    public static long DroppedPackets()
    {
        try { return long.Parse(File.ReadAllText($"/sys/class/net/{DummyDevice}/statistics/tx_packets").Trim(), System.Globalization.CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { return 0; }
    }

    /// <summary>The counters for <c>net-stats</c>.</summary>
    public static NetStats Stats() => new()
    {
        DroppedPackets = DroppedPackets(),
        CapturedConnections = NetCounters.CapturedConnections,
        DnsQueries = NetCounters.DnsQueries,
    };

    private static int InterfaceIndex(string name) =>
        int.Parse(File.ReadAllText($"/sys/class/net/{name}/ifindex").Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Writes /etc/resolv.conf (temp + rename; a symlink there, e.g. to systemd-resolved's file, is replaced).</summary>
    private static void WriteResolvConf()
    {
        string tmp = ResolvConf + ".microagent.tmp";
        File.WriteAllText(tmp, $"# written by microagent-agent: the host resolves (docs/ARCHITECTURE.md \"Networking\")\nnameserver 127.0.0.1\n");
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.Move(tmp, ResolvConf, overwrite: true);
    }
}
