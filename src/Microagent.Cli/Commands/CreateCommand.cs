using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent create NAME [options]</c>: a named workspace in state prepared.</summary>
internal static class CreateCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "Workspace name (or --name, or `name:` in --file)", Arity = ArgumentArity.ZeroOrOne };
        var nameOpt = new Option<string?>("--name") { Description = "Workspace name" };
        var image = new Option<string?>("--image") { Description = "Image reference (default: the embedded busybox image)" };
        var setup = new Option<string[]>("--setup") { Description = "Shell command run once, on first boot, before --exec (repeatable)", AllowMultipleArgumentsPerToken = false };
        var exec = new Option<string?>("--exec") { Description = "The workload: a shell command run after setup on every start; `microagent result` returns its result" };
        var env = new Option<string[]>("--env", "-e") { Description = "Environment KEY=VALUE for setup, workload and every exec (repeatable)", AllowMultipleArgumentsPerToken = false };
        var hostname = new Option<string?>("--hostname") { Description = "Guest hostname (default: the name)" };
        var size = new Option<int?>("--size-mib") { Description = WorkspaceArgs.Describe(WorkspaceLimits.SizeMiB, "overrides the profile") };
        var file = new Option<string?>("--file", "-f") { Description = "Workspace spec (microagent.yaml); flags override it" };
        var profile = WorkspaceArgs.Profile();
        var memory = WorkspaceArgs.Memory();
        var cpus = WorkspaceArgs.Cpus();
        var ttl = WorkspaceArgs.Ttl();
        var vsock = WorkspaceArgs.Vsock();
        var mediation = WorkspaceArgs.Mediation();
        var mediationOptional = WorkspaceArgs.MediationOptional();
        var shell = new Option<string?>("--shell") { Description = "The console shell `connect` opens (an absolute guest path; default /bin/sh)" };
        var disks = WorkspaceArgs.Disks();
        var fromSnapshot = new Option<string?>("--from-snapshot") { Description = "Fork SRC:TAG: the source's config, its own disk (an overlay on the snapshot, no copy) and identity; its first start resumes the snapshot" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the resolved plan (image, kernel, resources, disks, network) and create nothing" };
        var cmd = new Command("create", """
            Create a named workspace: its own qcow2 disk on the image baseline and a stored config. It does not boot:
            `microagent start NAME` does.

            Examples:
              microagent create research --profile small --setup 'echo prepared > /etc/motd'
              microagent create job --exec 'sh /work/job.sh' --ttl 600
              microagent create -f microagent.yaml
              microagent create agent --image python:3.11 --mediation 2048=127.0.0.1:9900
              microagent create lab --image debian:12 --shell /bin/bash --ttl 30m
              microagent create lab --dry-run --json
              microagent volume create data && microagent create lab -v data:/data
              microagent create lab -v ./dataset.ext4:/dataset:ro --bundle src=./src.tar.gz:/src:rw
              microagent create web --image nginx -p 8080:80
              microagent create dev --egress-allow github.com --egress-allow .githubusercontent.com --egress-lock-allowlist
              microagent create box --network isolated
              microagent create api --add-host db.internal:10.0.0.5 --egress-allow db.internal --egress-policy policy.yaml
              microagent create fork1 --from-snapshot research:before-tests
              microagent create chat --model hf.co/ggml-org/models@main/tinyllamas/stories260K.gguf --model-gpu off
            """);
        cmd.Arguments.Add(name);
        foreach (var o in new Option[] { nameOpt, image, setup, exec, env, hostname, profile, memory, cpus, size, ttl, vsock, mediation, mediationOptional, shell, dryRun, file, fromSnapshot }.Concat(disks)) cmd.Options.Add(o);
        var network = NetworkArgs.AddTo(cmd);
        var model = ModelArgs.AddTo(cmd);
        var docker = DockerFlags.AddTo(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            docker.Refuse(r);
            if (r.GetValue(fromSnapshot) is { } from) return await ForkAsync(r, r.GetValue(name) ?? r.GetValue(nameOpt), from, ct);
            var spec = r.GetValue(file) is { } f ? WorkspaceSpecFile.Load(f) : new WorkspaceSpec();
            spec = spec.With(new WorkspaceSpec
            {
                Name = r.GetValue(name) ?? r.GetValue(nameOpt),
                Image = r.GetValue(image),
                Setup = r.GetValue(setup) ?? [],
                Exec = r.GetValue(exec),
                Env = r.GetValue(env) ?? [],
                Hostname = r.GetValue(hostname),
                Profile = r.GetValue(profile),
                MemoryMiB = r.GetValue(memory),
                Cpus = r.GetValue(cpus),
                SizeMiB = r.GetValue(size),
                TtlSeconds = WorkspaceArgs.Seconds(r.GetValue(ttl)),
                Shell = r.GetValue(shell),
                Vsock = [.. (r.GetValue(vsock) ?? []).Select(VsockMapping.Parse)],
                Mediation = WorkspaceArgs.MediationFrom(r, mediation, mediationOptional),
                Disks = WorkspaceArgs.DisksFrom(r, disks),
                Network = network.From(r),
                Model = model.From(r),
            });
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            if (r.GetValue(dryRun))
            {
                PlanOutput.Print(r, manager.PlanCreate(spec));
                return 0;
            }
            var status = await manager.CreateAsync(spec, ct, Cli.Progress(r));
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(status, Cli.Json.WorkspaceStatus);
            else Console.WriteLine($"created {status.Name} ({status.Config.Profile}: {status.Config.MemoryMiB} MiB, {status.Config.Cpus} vCPU, disk {status.Config.SizeMiB} MiB); start it with `microagent start {status.Name}`");
            return 0;
        });
        return cmd;
    }

    /// <summary><c>create NEW --from-snapshot SRC:TAG</c>.</summary>
    private static async Task<int> ForkAsync(ParseResult r, string? name, string from, CancellationToken ct)
    {
        int colon = from.LastIndexOf(':');
        if (name is null || colon <= 0 || colon == from.Length - 1)
            throw Errors.MicroagentException.Invalid("a fork needs a name and --from-snapshot SOURCE:TAG", "e.g. `microagent create fork1 --from-snapshot research:before-tests`");
        var status = await new WorkspaceManager(GlobalOptions.Paths(r)).ForkAsync(name, from[..colon], from[(colon + 1)..], ct);
        if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(status, Cli.Json.WorkspaceStatus);
        else Console.WriteLine($"created {status.Name}, a fork of {from}; `microagent start {status.Name}` resumes the snapshot");
        return 0;
    }
}
