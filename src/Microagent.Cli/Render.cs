using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Cli;

/// <summary>Human output: aligned tables, state colours (only on a terminal and without NO_COLOR).</summary>
internal static class Render
{
    public static bool Color => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;

    public static string State(WorkspaceState s)
    {
        string text = s.WireName();
        if (!Color) return text;
        string code = s switch
        {
            WorkspaceState.Running => "32",
            WorkspaceState.Starting or WorkspaceState.Stopping => "33",
            WorkspaceState.Failed or WorkspaceState.Quarantined => "31",
            _ => "2",
        };
        return $"\u001b[{code}m{text}\u001b[0m";
    }

    /// <summary>Writes rows under headers, columns padded to the widest cell (colour codes not counted).</summary>
    /// <summary>The CLI flag of each library field name (<see cref="MicroagentException.Field"/>); a field not here has no flag.</summary>
    private static readonly Dictionary<string, string> FieldFlags = new(StringComparer.Ordinal)
    {
        ["name"] = "NAME", ["image"] = "--image", ["profile"] = "--profile", ["memory_mib"] = "--memory", ["cpus"] = "--cpus",
        ["size_mib"] = "--size-mib", ["ttl_seconds"] = "--ttl", ["env"] = "--env", ["vsock"] = "--vsock", ["mediation"] = "--mediation",
        ["mediation_optional"] = "--mediation-optional", ["hostname"] = "--hostname", ["setup"] = "--setup", ["exec"] = "--exec",
        ["user"] = "--user", ["cwd"] = "--cwd", ["timeout_ms"] = "--timeout", ["timeout_seconds"] = "--timeout",
        ["max_output_bytes"] = "--max-output", ["entrypoint"] = "--entrypoint", ["arch"] = "--arch", ["insecure"] = "--insecure-registry",
        ["stdin"] = "--stdin", ["file"] = "--file", ["shell"] = "--shell", ["volume"] = "--volume", ["reason"] = "--reason",
        ["target"] = "DST", ["disk"] = "--disk", ["bundle"] = "--bundle", ["sha256"] = "--sha256",
        ["network"] = "--network", ["publish"] = "--publish", ["egress_allow"] = "--egress-allow", ["egress_policy"] = "--egress-policy",
        ["add_host"] = "--add-host", ["kernel"] = "--kernel", ["backend"] = "--backend", ["supervisor"] = "--supervisor", ["egress_max_conns"] = "--egress-max-conns", ["egress_max_total_bytes"] = "--egress-max-total-bytes",
        ["interval_ms"] = "--interval", ["line"] = "--send",
    };

    /// <summary>The flag (or argument) that sets <paramref name="field"/>, or null.</summary>
    public static string? Flag(string? field) => field is not null && FieldFlags.TryGetValue(field, out var flag) ? flag : null;

    /// <summary>
    /// A failure: with <paramref name="json"/>, one document <c>{error: {kind, message, remediation, retryable, field, flag}}</c> on
    /// stdout (the MCP server's error object plus the flag); otherwise the message and hints on stderr.
    /// </summary>
    public static void Error(bool json, MicroagentException e)
    {
        string? flag = Flag(e.Field);
        if (json)
        {
            var doc = new JsonObject
            {
                ["error"] = new JsonObject
                {
                    ["kind"] = e.Kind.WireName(),
                    ["message"] = e.Message,
                    ["remediation"] = e.Remediation,
                    ["retryable"] = e.Retryable,
                    ["field"] = e.Field,
                    ["flag"] = flag,
                },
            };
            if (e is ConsoleTimeoutException t) doc["error"]!["partialOutput"] = t.PartialOutput;
            Console.Out.WriteLine(doc.ToJsonString(Cli.Json.Options));
            return;
        }
        Console.Error.WriteLine($"error: {e.Message}");
        if (!string.IsNullOrEmpty(e.Remediation))
            foreach (var (line, i) in e.Remediation.Split('\n').Select((l, i) => (l, i)))
                Console.Error.WriteLine(i == 0 ? $"  hint: {line}" : $"        {line}");
        if (flag is not null && !(e.Remediation?.Contains(flag, StringComparison.Ordinal) ?? false))
            Console.Error.WriteLine($"  fix:  {flag}");
    }

    public static void Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => Visible(r[i])))).ToArray();
        string Line(IReadOnlyList<string> cells) =>
            string.Join("  ", cells.Select((c, i) => i == cells.Count - 1 ? c : c + new string(' ', widths[i] - Visible(c)))).TrimEnd();
        Console.WriteLine(Color ? $"\u001b[1m{Line(headers)}\u001b[0m" : Line(headers));
        foreach (var r in all) Console.WriteLine(Line(r));
    }

    private static int Visible(string s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\u001b') { while (i < s.Length && s[i] != 'm') i++; continue; }
            n++;
        }
        return n;
    }

    public static string Bytes(long b) => Microagent.Tools.ByteSize.Format(b);

    public static string Ago(DateTimeOffset t)
    {
        var d = DateTimeOffset.UtcNow - t;
        return d.TotalSeconds < 60 ? $"{d.TotalSeconds:0}s ago" : d.TotalMinutes < 60 ? $"{d.TotalMinutes:0}m ago" : d.TotalHours < 48 ? $"{d.TotalHours:0}h ago" : $"{d.TotalDays:0}d ago";
    }

    public static void Status(WorkspaceStatus s)
    {
        var c = s.Config;
        var b = s.Boot;
        Console.WriteLine($"{s.Name}: {State(s.State)} ({Ago(s.Since)}){(s.Detail is { } d ? $" — {d}" : "")}");
        Console.WriteLine($"  image      {c.Image ?? "default"} ({c.ImageDigest})");
        Console.WriteLine($"  size       {c.Profile}: {b?.MemoryMiB ?? c.MemoryMiB} MiB, {b?.Cpus ?? c.Cpus} vCPU, disk {c.SizeMiB} MiB (uses {Bytes(s.DiskUsageBytes)})");
        Console.WriteLine($"  ttl        {((b?.TtlSeconds ?? c.TtlSeconds) == 0 ? "permanent" : $"{b?.TtlSeconds ?? c.TtlSeconds} s idle")}{(s.LastActivity is { } a ? $", last activity {Ago(a)}" : "")}");
        if ((b?.Vsock ?? c.Vsock).Count > 0) Console.WriteLine($"  vsock      {string.Join(", ", (b?.Vsock ?? c.Vsock).Select(v => v.ToString()))}");
        if (s.Mediation is { } m)
            Console.WriteLine($"  mediation  {m}{(s.MediationReady is { } mr ? $": {(mr.Ready ? "ready" : "NOT ready")} — {mr.Detail}{(mr.Error is { } e ? $" [error: {e}]" : "")}" : "")}");
        if (s.Network is { } net)
            Console.WriteLine($"  network    {net}{(s.NetworkState is { } ns ? $"{(ns.Severed ? " — SEVERED" : "")}{(ns.Egress is { } eg ? $"; egress {eg.Active} open, {eg.Allowed} allowed, {eg.Refused} refused, {eg.DnsQueries} DNS, out {Bytes(eg.BytesOut)} in {Bytes(eg.BytesIn)}" : "")}" : "")}");
        Console.WriteLine($"  ready      guest {(s.GuestReady ? "yes" : "no")}, exec {(s.ExecReady ? "yes" : "no")}, setup {(c.Setup.Count == 0 ? "none" : s.SetupCompleted ? "done" : "pending")}");
        if (s.Pids.Supervisor is not null) Console.WriteLine($"  pids       supervisor {s.Pids.Supervisor}, qemu {s.Pids.Qemu?.ToString() ?? "-"}");
        if (s.Kernel is { } k) Console.WriteLine($"  kernel     {k.Name} sha256:{k.Sha256}");
        Console.WriteLine($"  rootfs     {s.Rootfs.Sha256} ({s.Rootfs.Name})");
        if (c.Exec is not null) Console.WriteLine($"  workload   {c.Exec}");
        Console.WriteLine($"  dir        {s.Directory}{(s.StateDirFreeBytes is { } free ? $" ({Bytes(free)} free on its filesystem)" : "")}");
    }
}
