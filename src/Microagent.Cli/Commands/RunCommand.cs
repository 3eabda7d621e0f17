using System.CommandLine;
using System.Text;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent run [options] -- CMD...</c>: one command in a brand-new VM that is gone afterwards.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var image = new Option<string?>("--image") { Description = "Image to run: a registry reference (pulled on first use), `oci:PATH[:TAG]`, `docker-archive:PATH` (default: the embedded busybox image)" };
        var entrypoint = new Option<string?>("--entrypoint") { Description = "Replace the image's Entrypoint (the image's Cmd is then ignored; \"\" clears it)" };
        var memory = new Option<int>("--memory") { Description = WorkspaceArgs.Describe(WorkspaceLimits.MemoryMiB), DefaultValueFactory = _ => 256 };
        var cpus = new Option<int>("--cpus") { Description = WorkspaceArgs.Describe(WorkspaceLimits.Cpus), DefaultValueFactory = _ => 1 };
        var timeout = new Option<TimeSpan?>("--timeout") { Description = "Kill the command after this long (exit 124): seconds, or 300ms, 30s, 5m, 1h" };
        var keep = new Option<bool>("--keep") { Description = "Keep the workspace directory (disk overlay, serial log) after the VM powers off" };
        var rm = new Option<bool>("--rm") { Description = "Remove the workspace when the command ends (the default; the opposite of --keep)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the resolved plan (image, kernel, resources, disks, network, command) and do nothing" };
        var env = new Option<string[]>("--env", "-e") { Description = "Set an environment variable in the guest (KEY=VALUE, repeatable)", AllowMultipleArgumentsPerToken = false };
        var cwd = new Option<string?>("--cwd") { Description = "Working directory in the guest" };
        var user = new Option<string?>("--user", "-u") { Description = "Run as this guest user (name, uid or uid:gid)" };
        var cold = WorkspaceArgs.Cold();
        var disks = WorkspaceArgs.Disks();
        var command = new Argument<string[]>("command") { Description = "IMAGE, then the command and its arguments (or the command alone after `--`); no implied shell", Arity = ArgumentArity.ZeroOrMore };

        var cmd = new Command("run", """
            Run one command in a fresh VM that is thrown away afterwards: run [OPTIONS] [IMAGE] [CMD ARG...].
            As in `docker run`, everything after IMAGE is the guest command, flags included; without IMAGE (or with --image)
            give the command after `--`. No command: the image's Entrypoint and Cmd.
            stdout and stderr stream live; the guest's exit code becomes microagent's exit code
            (128+N when killed by signal N, 124 on --timeout, 127 when the command does not exist).
            Host stdin is forwarded when it is not a terminal.

            Examples:
              microagent run -- uname -a
              microagent run docker.io/library/ubuntu:24.04 uname -a
              microagent run --timeout 30s --image python:3.11 -- python3 -c 'print(42)'
              microagent run --dry-run --json debian:12
              microagent run -- sh -c 'echo hi >&2; exit 3'
              microagent run --egress-allow pypi.org --egress-allow .pythonhosted.org --egress-lock-allowlist python:3.11 pip download requests
              microagent run --network isolated -- sh -c 'wget -q -O- http://example.com || echo no route out'
              echo data | microagent run -- sha256sum
              microagent run --json -- cat /etc/os-release
              microagent run -v ./src.tar.gz:/src --image python:3.11 -- python3 /src/main.py
              microagent run -v data:/data -- sh -c 'date >> /data/log' 
              microagent run --backend qemu-tcg --kernel /srv/kernels/vmlinuz-6.1.0-40-cloud-amd64 -- uname -r
            """);
        foreach (var o in new Option[] { image, entrypoint, memory, cpus, timeout, keep, rm, dryRun, env, cwd, user, cold }.Concat(disks)) cmd.Options.Add(o);
        var network = NetworkArgs.AddTo(cmd);
        var platform = BootArgs.AddTo(cmd);
        var model = ModelArgs.AddTo(cmd);
        var docker = DockerFlags.AddTo(cmd);
        cmd.Arguments.Add(command);
        cmd.SetAction(async (r, ct) =>
        {
            WorkspaceArgs.RejectOptionLikeArguments(r, "run");
            docker.Refuse(r);
            if (r.GetValue(rm) && r.GetValue(keep))
                throw Errors.MicroagentException.Invalid("--rm and --keep contradict each other", "give one: --rm (the default) removes the workspace, --keep keeps it");
            bool json = r.GetValue(GlobalOptions.Json);
            Stream? stdin = Console.IsInputRedirected ? Console.OpenStandardInput() : null;
            Stream? stdout = json ? null : Console.OpenStandardOutput();
            Stream? stderr = json ? null : Console.OpenStandardError();
            var options = platform.Apply(r, new RunOptions
            {
                Command = r.GetValue(command) ?? [],
                Image = r.GetValue(image),
                Entrypoint = r.GetValue(entrypoint),
                MemoryMiB = r.GetValue(memory),
                Cpus = r.GetValue(cpus),
                Timeout = r.GetValue(timeout),
                Keep = r.GetValue(keep),
                Env = r.GetValue(env) ?? [],
                Cwd = r.GetValue(cwd),
                User = r.GetValue(user),
                Disks = WorkspaceArgs.DisksFrom(r, disks),
                Network = network.From(r),
                Model = model.From(r),
                Stdin = stdin,
                Stdout = stdout,
                Stderr = stderr,
                Progress = Cli.Progress(r),
                Cold = r.GetValue(cold),
            });
            if (r.GetValue(dryRun))
            {
                PlanOutput.Print(r, new WorkspaceManager(GlobalOptions.Paths(r)).PlanRun(options));
                return 0;
            }
            var result = await new Runner(GlobalOptions.Paths(r)).RunAsync(options, ct);
            if (json)
            {
                Cli.WriteJson(new RunJson(result.WorkspaceId, result.Status, result.ExitCode, result.Signal, Decode(result.Stdout),
                    Decode(result.Stderr), result.StdoutTruncated, result.StderrTruncated, result.Error, result.Accelerator, result.Timings,
                    result.KeptAt) { WarmFrom = result.WarmFrom, ColdReason = result.ColdReason }, Cli.Json.RunJson);
            }
            else
            {
                if (result.Error is not null) Console.Error.WriteLine($"microagent: {result.Error}");
                if (result.KeptAt is not null) Console.Error.WriteLine($"microagent: workspace kept at {result.KeptAt}");
            }
            return result.ExitCode;
        });
        return cmd;
    }

    private static string? Decode(byte[]? bytes) => bytes is null ? null : Encoding.UTF8.GetString(bytes);
}
