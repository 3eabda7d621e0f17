using System.CommandLine;
using Microagent.Models;
using Microagent.Tools;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent model pull|list|delete|prune|serve|stop|runners|policy</c> (docs/ARCHITECTURE.md "Model runner").</summary>
internal static class ModelCommand
{
    public static Command Create()
    {
        var cmd = new Command("model", """
            Manage models and their host runners. A workspace created with --model REF gets a forward on its 127.0.0.1:11434
            (OPENAI_BASE_URL=http://127.0.0.1:11434/v1 in its workload and every exec) to a host runner (llama.cpp's llama-server by
            default) that workspaces with the same model and runner settings share; the runner stops when its last holder halts.

            Examples:
              microagent model pull hf.co/ggml-org/models@main/tinyllamas/stories260K.gguf
              microagent model pull ./tiny.gguf
              microagent create chat --model ./tiny.gguf && microagent start chat
              microagent exec chat -- sh -c 'wget -qO- $OPENAI_BASE_URL/models'
              microagent model runners
              microagent model stop ./tiny.gguf
            """);
        cmd.Subcommands.Add(Pull());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Delete());
        cmd.Subcommands.Add(Prune());
        cmd.Subcommands.Add(Serve());
        cmd.Subcommands.Add(Stop());
        cmd.Subcommands.Add(Runners());
        cmd.Subcommands.Add(ModelPolicyCommand.Create());
        return cmd;
    }

    private static Argument<string> Ref() => new("ref") { Description = "hf.co/ORG/REPO[@REV]/FILE.gguf, ORG/REPO/FILE.gguf, a .gguf path, or a digest (sha256:HEX or its first 12+ digits)" };

    private static Command Pull()
    {
        var reference = Ref();
        var token = new Option<string?>("--token") { Description = "Bearer token for the Hugging Face endpoint (default $HF_TOKEN, then $HUGGING_FACE_HUB_TOKEN); never logged" };
        var force = new Option<bool>("--force") { Description = "Download again even when the model is in the store" };
        var cmd = new Command("pull", $"""
            Fetch a GGUF model into the store (<state-dir>/models): over HTTPS from the Hugging Face endpoint
            (${ModelReference.EndpointVariable} overrides {ModelReference.DefaultEndpoint}), streamed to a partial file while hashed, then
            renamed into place; a local .gguf path is copied in by digest.

            Examples:
              microagent model pull hf.co/ggml-org/models@main/tinyllamas/stories260K.gguf
              HF_TOKEN=hf_... microagent model pull org/private-repo/model-q4.gguf
              microagent model pull ./model.gguf --json
            """) { reference, token, force };
        cmd.SetAction(async (r, ct) =>
        {
            var m = await new ModelStore(GlobalOptions.Paths(r)).PullAsync(r.GetValue(reference)!,
                new ModelPullOptions { Token = r.GetValue(token), Force = r.GetValue(force), Progress = Cli.Progress(r) }, ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(m, Cli.Json.ModelRecord);
            else Console.WriteLine($"{m.Ref}: {m.Sha256[..19]}… {ByteSize.Format(m.Size)}");
            return 0;
        });
        return cmd;
    }

    private static Command List()
    {
        var cmd = new Command("list", "List the models in the store.\n\nExamples:\n  microagent model ls\n  microagent model list --json");
        cmd.Aliases.Add("ls");
        cmd.SetAction(r =>
        {
            var all = new ModelStore(GlobalOptions.Paths(r)).List();
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(all, Cli.Json.IReadOnlyListModelRecord); return 0; }
            if (all.Count == 0) { Console.WriteLine("no models (pull one with `microagent model pull REF`)"); return 0; }
            Render.Table(["MODEL", "DIGEST", "SIZE", "LAST USED"],
                all.Select(m => (IReadOnlyList<string>)[m.Ref, m.Sha256[7..19], ByteSize.Format(m.Size), m.LastUsed.ToString("u")]));
            return 0;
        });
        return cmd;
    }

    private static Command Delete()
    {
        var reference = Ref();
        var cmd = new Command("delete", "Remove a model from the store (its file too, unless another reference names the same digest). A running runner keeps its open file.\n\nExamples:\n  microagent model rm ./tiny.gguf\n  microagent model delete 3f2a9c1b7e44") { reference };
        cmd.Aliases.Add("rm");
        cmd.SetAction(async (r, ct) =>
        {
            bool removed = await new ModelStore(GlobalOptions.Paths(r)).DeleteAsync(r.GetValue(reference)!, ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(new ModelDeletedJson(r.GetValue(reference)!, removed), Cli.Json.ModelDeletedJson);
            else Console.WriteLine(removed ? $"deleted {r.GetValue(reference)}" : $"no model {r.GetValue(reference)}");
            return 0;
        });
        return cmd;
    }

    private static Command Prune()
    {
        var cmd = new Command("prune", "Delete model files no index entry names, and partial downloads older than an hour.\n\nExamples:\n  microagent model prune --json");
        cmd.SetAction(async (r, ct) =>
        {
            var result = await new ModelStore(GlobalOptions.Paths(r)).PruneAsync(ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(result, Cli.Json.ModelPruneResult);
            else Console.WriteLine($"removed {result.Removed.Count} file(s), {ByteSize.Format(result.Bytes)}");
            return 0;
        });
        return cmd;
    }

    private static Command Serve()
    {
        var reference = Ref();
        var dedicated = new Option<bool>("--dedicated") { Description = "A private runner no workspace shares (default: the shared one, which workspaces with the same settings use too)" };
        var cmd = new Command("serve", """
            Start (or pin) a host runner for a model, pulled when missing, and print its loopback URL. A pinned runner stays up
            without holders until `microagent model stop REF`.

            Examples:
              microagent model serve ./tiny.gguf
              microagent model serve ./tiny.gguf --dedicated --model-gpu off --json
              microagent model serve ./m.gguf --model-runner custom --model-runner-command /usr/bin/node --model-runner-arg ./server.js --model-runner-arg {port}
            """) { reference, dedicated };
        var args = ModelArgs.AddRunnerTo(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            var spec = (args.From(r) ?? new ModelSpec()).ToRunner(null);
            var runner = await new ModelRunnerRegistry(GlobalOptions.Paths(r)).ServeAsync(r.GetValue(reference)!, spec, r.GetValue(dedicated), Cli.Progress(r), ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(runner, Cli.Json.ModelRunnerRecord);
            else Console.WriteLine($"runner {runner.Id} serves {runner.Ref} at {runner.Url} (pid {runner.Pid}); stop it with `microagent model stop {runner.Id}`");
            return 0;
        });
        return cmd;
    }

    private static Command Stop()
    {
        var reference = new Argument<string>("ref") { Description = "A model reference, its digest, or a runner id (r-…, d-…)" };
        var cmd = new Command("stop", "Force-stop the runners of a model (pinned or held) and name the workspaces that held them; their forward has no runner until their next start.\n\nExamples:\n  microagent model stop ./tiny.gguf\n  microagent model stop r-1a2b3c4d5e6f --json") { reference };
        cmd.SetAction(async (r, ct) =>
        {
            var result = await new ModelRunnerRegistry(GlobalOptions.Paths(r)).StopAsync(r.GetValue(reference)!, ct);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(result, Cli.Json.ModelStopResult); return 0; }
            Console.WriteLine(result.Runners.Count == 0 ? $"no runner for {r.GetValue(reference)}"
                : $"stopped {string.Join(", ", result.Runners)}{(result.Workspaces.Count > 0 ? $"; affected workspaces: {string.Join(", ", result.Workspaces)}" : "")}");
            return 0;
        });
        return cmd;
    }

    private static Command Runners()
    {
        var cmd = new Command("runners", "List the host model runners that are alive (dead entries are dropped): model, port, pid and holders.\n\nExamples:\n  microagent model runners\n  microagent model runners --json");
        cmd.SetAction(async (r, ct) =>
        {
            var all = await new ModelRunnerRegistry(GlobalOptions.Paths(r)).ListAsync(ct);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(all, Cli.Json.IReadOnlyListModelRunnerRecord); return 0; }
            if (all.Count == 0) { Console.WriteLine("no model runners"); return 0; }
            Render.Table(["RUNNER", "MODEL", "BACKEND", "URL", "PID", "HOLDERS"],
                all.Select(x => (IReadOnlyList<string>)[x.Id, x.Ref, x.Name, x.Url, x.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    x.Holders.Count == 0 ? (x.Pinned ? "(pinned)" : "-") : string.Join(",", x.Holders) + (x.Pinned ? " (pinned)" : "")]));
            return 0;
        });
        return cmd;
    }
}
