using System.CommandLine;
using Microagent.Diagnostics;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent doctor</c>: what this host can do and how to fix what it cannot.</summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var cmd = new Command("doctor", """
            Check this host: QEMU, the accelerator and why, the kernel, the guest agent, e2fsprogs, the state directory.
            The accelerator is chosen by a real probe boot, not by the existence of /dev/kvm; the kernel's hash is checked.
            Exits 1 when something is broken.

            Examples:
              microagent doctor
              microagent doctor --json
            """);
        cmd.SetAction(async (r, ct) =>
        {
            var report = await new Doctor(GlobalOptions.Paths(r)).RunAsync(ct);
            if (r.GetValue(GlobalOptions.Json))
            {
                Cli.WriteJson(new DoctorJson(report.Healthy, report.StateDir,
                    report.Accelerator is { } a
                        ? new DoctorAcceleratorJson(a.Accelerator.ToString().ToLowerInvariant(), a.MachineType, a.Reason, a.Probed, a.KvmStatus)
                        : null,
                    [.. report.Checks.Select(c => new DoctorCheckJson(c.Name, c.Status.ToString().ToLowerInvariant(), c.Detail, c.Remediation))]),
                    Cli.Json.DoctorJson);
            }
            else
            {
                bool color = !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
                foreach (var c in report.Checks)
                {
                    string tag = c.Status switch { CheckStatus.Ok => "ok  ", CheckStatus.Warn => "warn", _ => "FAIL" };
                    if (color) tag = c.Status switch { CheckStatus.Ok => $"\u001b[32m{tag}\u001b[0m", CheckStatus.Warn => $"\u001b[33m{tag}\u001b[0m", _ => $"\u001b[31m{tag}\u001b[0m" };
                    Console.WriteLine($"{tag}  {c.Name,-14} {c.Detail}");
                    if (c.Remediation is not null && c.Status != CheckStatus.Ok) Console.WriteLine($"      {"",-14} fix: {c.Remediation}");
                }
                Console.WriteLine(report.Healthy ? "\nready." : "\nnot ready: fix the FAIL lines above.");
            }
            return report.Healthy ? 0 : 1;
        });
        return cmd;
    }
}
