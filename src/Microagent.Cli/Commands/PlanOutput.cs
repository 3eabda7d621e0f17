using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary>The <c>--dry-run</c> plan of <c>run</c> and <c>create</c>: the library's <see cref="WorkspacePlan"/>, as JSON or as lines.</summary>
internal static class PlanOutput
{
    public static void Print(ParseResult r, WorkspacePlan p)
    {
        if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(p, Cli.Json.WorkspacePlan); return; }
        Console.WriteLine($"dry run: {p.Operation}{(p.Name is null ? "" : " " + p.Name)} would use (nothing was changed)");
        Console.WriteLine($"  image      {p.Image}{(p.ImageDigest is { } d ? $" ({d[..19]}…, cached)" : " (not cached: would be pulled or built)")}");
        Console.WriteLine($"  kernel     {(p.Kernel is { } k ? $"{k.Version} sha256:{k.Sha256[..16]}… ({k.KernelPath})" : "none installed")}");
        Console.WriteLine($"  resources  {p.Profile}: {p.MemoryMiB} MiB, {p.Cpus} vCPU, disk {p.DiskMiB} MiB, ttl {(p.TtlSeconds == 0 ? "permanent" : $"{p.TtlSeconds} s idle")}");
        foreach (var disk in p.Disks)
            Console.WriteLine($"  disk       {disk.Device} {disk.Mode} {disk.Path}{(disk.Backing is { } b ? $" (overlay on {b})" : "")}"
                + (disk.Target is { } t ? $" on {t} ({disk.Kind} {disk.Source})" : ""));
        Console.WriteLine($"  network    {p.Network}");
        foreach (var v in p.Vsock) Console.WriteLine($"  vsock      {v}");
        if (p.Mediation is { } m) Console.WriteLine($"  mediation  {m}");
        if (p.Command.Count > 0) Console.WriteLine($"  command    {string.Join(' ', p.Command)}");
        foreach (string n in p.Notes) Console.WriteLine($"  note       {n}");
    }
}
