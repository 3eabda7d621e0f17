namespace Microagent.Workspaces;

/// <summary>
/// One sample of an active workspace's resource use (docs/ARCHITECTURE.md "Stats"): what <c>microagent stats</c> and <c>ps</c>
/// print, <see cref="WorkspaceManager.GetStatsAsync"/> returns and MCP <c>workspace_stats</c> answers.
/// </summary>
public sealed record WorkspaceStats
{
    /// <summary>Workspace name.</summary>
    public required string Name { get; init; }
    /// <summary>running or paused (only active workspaces have stats).</summary>
    public required WorkspaceState State { get; init; }
    /// <summary>When the sample was taken (the end of its window).</summary>
    public required DateTimeOffset SampledAt { get; init; }
    /// <summary>The window the CPU figure covers, in milliseconds.</summary>
    public required long IntervalMs { get; init; }
    /// <summary>Seconds since the guest became ready on this boot; null when unknown.</summary>
    public long? UptimeSeconds { get; init; }
    /// <summary>Memory this boot gave the guest, in MiB.</summary>
    public required int MemoryMiB { get; init; }
    /// <summary>vCPUs this boot gave the guest.</summary>
    public required int Cpus { get; init; }
    /// <summary>Host CPU time of the VM's QEMU process over the window.</summary>
    public required CpuStats Cpu { get; init; }
    /// <summary>Host memory of the VM's QEMU process and its supervisor.</summary>
    public required HostMemoryStats HostMemory { get; init; }
    /// <summary>What the guest kernel says about its memory; null when the guest did not answer within a second (paused, busy).</summary>
    public GuestMemoryStats? GuestMemory { get; init; }
    /// <summary>Every drive of this boot (root first, then the data disks), totals since QEMU started; empty when the supervisor did not answer.</summary>
    public required IReadOnlyList<DiskIoStats> Disks { get; init; }
    /// <summary>Bytes read from all drives since QEMU started.</summary>
    public long DiskReadBytes { get; init; }
    /// <summary>Bytes written to all drives since QEMU started.</summary>
    public long DiskWriteBytes { get; init; }
    /// <summary>Bytes through the host's network paths on this boot; null when the supervisor did not answer.</summary>
    public NetworkIoStats? Network { get; init; }
}

/// <summary>Host CPU use of the VM's QEMU process (user + system time from /proc/PID/stat) over a window.</summary>
/// <param name="Percent">Percent of one host core over the window: 100 = one core busy the whole time; a VM with N vCPUs can reach N × 100.</param>
/// <param name="UserSeconds">User CPU seconds of the QEMU process since it started.</param>
/// <param name="SystemSeconds">System CPU seconds of the QEMU process since it started.</param>
/// <param name="HostCores">Host cores online (the most <paramref name="Percent"/> could be is 100 × this).</param>
public sealed record CpuStats(double Percent, double UserSeconds, double SystemSeconds, int HostCores);

/// <summary>Host memory of a workspace's processes (/proc/PID/smaps_rollup): RSS counts shared pages in full, PSS shares them out.</summary>
/// <param name="QemuRssBytes">Resident set of the QEMU process (includes the guest RAM it has touched).</param>
/// <param name="QemuPssBytes">Proportional set of the QEMU process.</param>
/// <param name="SupervisorRssBytes">Resident set of the supervisor (vsock backend, proxies, broker).</param>
/// <param name="SupervisorPssBytes">Proportional set of the supervisor.</param>
public sealed record HostMemoryStats(long QemuRssBytes, long QemuPssBytes, long SupervisorRssBytes, long SupervisorPssBytes);

/// <summary>The guest kernel's memory (/proc/meminfo in the guest).</summary>
/// <param name="TotalBytes">MemTotal: what the guest kernel manages (a little under the VM's memory).</param>
/// <param name="AvailableBytes">MemAvailable: what new work could get.</param>
/// <param name="UsedBytes">TotalBytes − AvailableBytes.</param>
/// <param name="UptimeMs">The guest kernel's uptime (it stands still while paused).</param>
public sealed record GuestMemoryStats(long TotalBytes, long AvailableBytes, long UsedBytes, long UptimeMs);

/// <summary>One drive's I/O since QEMU started (QMP <c>query-blockstats</c>).</summary>
/// <param name="Name"><c>root</c>, or the data disk's name.</param>
/// <param name="ReadBytes">Bytes the guest read.</param>
/// <param name="WriteBytes">Bytes the guest wrote.</param>
/// <param name="ReadOps">Read requests.</param>
/// <param name="WriteOps">Write requests.</param>
public sealed record DiskIoStats(string Name, long ReadBytes, long WriteBytes, long ReadOps, long WriteOps);

/// <summary>Bytes through the host's network paths on this boot (docs/ARCHITECTURE.md "Networking").</summary>
/// <param name="Mode">user or isolated (isolated: every figure is 0).</param>
/// <param name="EgressBytesOut">Guest → internet bytes through the egress broker.</param>
/// <param name="EgressBytesIn">Internet → guest bytes through the egress broker.</param>
/// <param name="PublishedBytesIn">Host client → guest bytes through published ports.</param>
/// <param name="PublishedBytesOut">Guest → host client bytes through published ports.</param>
/// <param name="ActiveConnections">Egress and published-port connections relayed now.</param>
public sealed record NetworkIoStats(string Mode, long EgressBytesOut, long EgressBytesIn, long PublishedBytesIn, long PublishedBytesOut, int ActiveConnections);
