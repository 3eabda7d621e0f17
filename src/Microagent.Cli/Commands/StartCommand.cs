using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent start NAME</c>: boot from disk through a detached supervisor; returns when exec is served.</summary>
internal static class StartCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var profile = WorkspaceArgs.Profile();
        var memory = WorkspaceArgs.Memory();
        var cpus = WorkspaceArgs.Cpus();
        var ttl = WorkspaceArgs.Ttl();
        var vsock = WorkspaceArgs.Vsock();
        var mediation = WorkspaceArgs.Mediation();
        var mediationOptional = WorkspaceArgs.MediationOptional();
        var wait = new Option<bool>("--wait") { Description = "Then block until the workspace stops (its workload ended, its lease expired, or it was halted), like `start` followed by `wait`" };
        var waitTimeout = new Option<TimeSpan?>("--wait-timeout") { Description = "With --wait: give up waiting after this long (exit 75; the workspace keeps running): seconds, or 30s, 5m, 1h" };
        var fromSnapshot = new Option<string?>("--from-snapshot") { Description = "Restore snapshot TAG in place: roll the disk back to it and resume its memory (the workspace must be stopped)" };
        var cold = WorkspaceArgs.Cold();
        var cmd = new Command("start", """
            Boot a workspace from its disk (memory is not kept across halt/start) and return once the guest serves exec.
            Setup commands run on the first successful boot only; the workload (--exec) runs on every start.
            --profile/--memory/--cpus/--ttl/--vsock/--mediation/--network/--publish and the --model-runner*/--model-mediation*
            flags override the stored config for this boot only. A workspace with a model re-pairs on every start: its runner is
            re-ensured (the model pulled when missing) and the workspace held by it; --model-runner-env values go with each start.
            A running or starting workspace is a conflict (exit 1); a failed boot prints the serial-log tail.
            --from-snapshot TAG restores a snapshot in place instead: the disk rolls back to it and the guest resumes
            where it was captured (live connections are reset; the clock is set and the RNG reseeded from the host).
            The first start of a new workspace restores the warm-start template of its image and sizes when there is
            one (then applies its hostname, network, env and setup), else boots cold and makes one; --cold boots cold.

            Examples:
              microagent start research
              microagent start research --memory 1024 --ttl 5m
              microagent start research --network isolated
              microagent start web -p 8080:80
              microagent start chat --model-runner-env LLAMA_ARG_THREADS=2
              microagent start job --wait --wait-timeout 10m && microagent result job
              microagent halt research && microagent start research --from-snapshot before-tests
            """ + "\n" + BootArgs.Examples);
        cmd.Arguments.Add(name);
        var network = NetworkArgs.AddTo(cmd, policyFlags: false);
        var platform = BootArgs.AddTo(cmd);
        var model = ModelArgs.AddTo(cmd, withRef: false);
        foreach (var o in new Option[] { profile, memory, cpus, ttl, vsock, mediation, mediationOptional, wait, waitTimeout, fromSnapshot, cold }) cmd.Options.Add(o);
        cmd.SetAction(async (r, ct) =>
        {
            if (r.GetValue(waitTimeout) is not null && !r.GetValue(wait))
                throw Errors.MicroagentException.Invalid("--wait-timeout goes with --wait", "e.g. `microagent start NAME --wait --wait-timeout 10m`");
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            var status = await manager.StartAsync(r.GetValue(name)!, platform.Apply(r, new StartOptions
            {
                Profile = r.GetValue(profile),
                MemoryMiB = r.GetValue(memory),
                Cpus = r.GetValue(cpus),
                TtlSeconds = WorkspaceArgs.Seconds(r.GetValue(ttl)),
                Vsock = [.. (r.GetValue(vsock) ?? []).Select(VsockMapping.Parse)],
                Mediation = WorkspaceArgs.MediationFrom(r, mediation, mediationOptional),
                Network = network.From(r),
                Model = model.From(r),
                Progress = Cli.Progress(r),
                FromSnapshot = r.GetValue(fromSnapshot),
                Cold = r.GetValue(cold),
            }), ct);
            if (r.GetValue(wait))
            {
                if (!r.GetValue(GlobalOptions.Json)) Console.WriteLine($"{status.Name} is {Render.State(status.State)} (booted in {status.Boot?.BootMs} ms); waiting for it to stop");
                status = await manager.WaitAsync(status.Name, r.GetValue(waitTimeout), ct);
                if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(status, Cli.Json.WorkspaceStatus);
                else Console.WriteLine($"{status.Name} is {Render.State(status.State)}{(status.Detail is { } d ? $": {d}" : "")}");
                return 0;
            }
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(status, Cli.Json.WorkspaceStatus);
            else Console.WriteLine($"{status.Name} is {Render.State(status.State)} ({(status.Boot?.RestoredFrom is { } from ? $"restored from {from}" : status.Boot?.WarmFrom is { } t ? $"warm start from template {t}" : "booted")} in {status.Boot?.BootMs} ms, {status.Boot?.Accelerator})");
            return 0;
        });
        return cmd;
    }
}
