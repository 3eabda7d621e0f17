using System.CommandLine;
using Microagent.Images;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent image pull|list|inspect|tag|delete|prune</c>.</summary>
internal static class ImageCommand
{
    public static Command Create()
    {
        var cmd = new Command("image", """
            Manage the image cache. An image is turned into a sealed ext4 baseline (keyed by manifest digest and
            platform) the first time it is used; every workspace then gets a copy-on-write overlay on it.
            Sources: a registry reference (busybox, debian:12, 127.0.0.1:5000/tools/python:3.11, NAME@sha256:...),
            an OCI layout (oci:PATH[:TAG]) or a `docker save` tarball (docker-archive:PATH).
            """);
        cmd.Subcommands.Add(Pull());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Inspect());
        cmd.Subcommands.Add(Tag());
        cmd.Subcommands.Add(Remove());
        cmd.Subcommands.Add(Prune());
        return cmd;
    }

    internal static readonly Option<string?> Arch = new("--arch") { Description = "Platform architecture to select from a multi-arch image (default: the host's, amd64)" };

    private static Command Pull()
    {
        var image = new Argument<string>("image") { Description = "Registry reference, oci:PATH[:TAG] or docker-archive:PATH" };
        var insecure = new Option<string[]>("--insecure-registry") { Description = "Reach this registry (host[:port]) over plain HTTP (loopback registries always are)", AllowMultipleArgumentsPerToken = false };
        var size = new Option<long?>("--size-mib") { Description = "Baseline disk size in MiB (default: content + 10% + 256 MiB headroom)" };
        var cmd = new Command("pull", """
            Fetch an image and build its baseline, ready to run. Layers are verified against their sha256 digests.
            Credentials come from `microagent registry login`.

            Examples:
              microagent image pull busybox
              microagent image pull 127.0.0.1:5000/tools/python:3.11
              microagent image pull --arch arm64 docker.io/library/alpine:3.20
              microagent image pull docker-archive:./app.tar
            """);
        cmd.Arguments.Add(image);
        cmd.Options.Add(Arch);
        cmd.Options.Add(insecure);
        cmd.Options.Add(size);
        cmd.SetAction(async (r, ct) =>
        {
            using var progress = ProgressDisplay.For(r);
            var b = await new ImageStore(GlobalOptions.Paths(r)).PullAsync(r.GetValue(image), new PullOptions
            {
                Architecture = r.GetValue(Arch),
                InsecureRegistries = r.GetValue(insecure) ?? [],
                SizeMiB = r.GetValue(size),
            }, progress, ct);
            progress?.Dispose();
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(Render(new ImageInfo(b, [b.ImageRef], [])), Cli.Json.ImageJson);
            else Console.WriteLine($"{b.ImageRef}\n  digest   {b.ManifestDigest}\n  platform {b.Platform}\n  baseline {b.Path} ({b.SizeBytes >> 20} MiB)");
            return 0;
        });
        return cmd;
    }

    private static Command List()
    {
        var cmd = new Command("list", "List cached images: names, manifest digest, platform, baseline size, workspaces using them.\n\nExamples:\n  microagent image ls\n  microagent image list --json");
        cmd.Aliases.Add("ls");
        cmd.SetAction(r =>
        {
            var images = new ImageStore(GlobalOptions.Paths(r)).List();
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson([.. images.Select(Render)], Cli.Json.ListImageJson); return 0; }
            if (images.Count == 0) { Console.WriteLine("no images (pull one with `microagent image pull`)"); return 0; }
            Console.WriteLine($"{"REFERENCE",-50} {"DIGEST",-19} {"PLATFORM",-12} {"SIZE",8} {"USED",4}  CREATED");
            foreach (var i in images)
                foreach (string name in i.References.DefaultIfEmpty("<none>"))
                    Console.WriteLine($"{name,-50} {i.Baseline.ManifestDigest[..19],-19} {i.Baseline.Platform,-12} {$"{i.Baseline.ContentBytes >> 20}MiB",8} {i.UsedBy.Count,4}  {i.Baseline.CreatedAt.ToLocalTime():yyyy-MM-dd HH:mm}");
            return 0;
        });
        return cmd;
    }

    private static Command Inspect()
    {
        var image = new Argument<string>("image") { Description = "Name as pulled, manifest digest or digest prefix" };
        var cmd = new Command("inspect", "Show a cached image (JSON): digest, platform, config (Env, Entrypoint, Cmd, WorkingDir, User), baseline, users.\n\nExamples:\n  microagent image inspect busybox\n  microagent image inspect sha256:3f1a2b");
        cmd.Arguments.Add(image);
        cmd.Options.Add(Arch);
        cmd.SetAction(r =>
        {
            var info = new ImageStore(GlobalOptions.Paths(r)).Inspect(r.GetValue(image)!, r.GetValue(Arch));
            Cli.WriteJson(Render(info), Cli.Json.ImageJson); // inspect is JSON either way, like `docker inspect`
            return 0;
        });
        return cmd;
    }

    private static Command Remove()
    {
        var image = new Argument<string>("image") { Description = "Name as pulled, manifest digest or digest prefix" };
        var cmd = new Command("delete", """
            Remove a name; its baseline goes too when no other name points at it. Refused while a workspace disk uses it.

            Examples:
              microagent image delete busybox
              microagent image rm 127.0.0.1:5000/tools/python:3.11 --json
            """);
        cmd.Aliases.Add("rm");
        cmd.Aliases.Add("remove");
        cmd.Arguments.Add(image);
        cmd.Options.Add(Arch);
        cmd.SetAction(r =>
        {
            string? removed = new ImageStore(GlobalOptions.Paths(r)).Remove(r.GetValue(image)!, r.GetValue(Arch));
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(new ImageRemovedJson(r.GetValue(image), removed), Cli.Json.ImageRemovedJson);
            else Console.WriteLine(removed is null ? $"untagged {r.GetValue(image)}" : $"removed {r.GetValue(image)} ({removed})");
            return 0;
        });
        return cmd;
    }

    private static Command Tag()
    {
        var source = new Argument<string>("source") { Description = "A cached image: name as pulled, manifest digest or digest prefix" };
        var target = new Argument<string>("target") { Description = "The new name, e.g. tools:dev or 127.0.0.1:5000/team/tool:1" };
        var cmd = new Command("tag", """
            Give a cached image another name (like `docker tag`; nothing is pushed or copied). A name that pointed elsewhere moves.

            Examples:
              microagent image tag busybox tools:dev
              microagent run tools:dev uname -a
              microagent image tag sha256:3f1a2b 127.0.0.1:5000/team/tool:1 --json
            """);
        cmd.Arguments.Add(source);
        cmd.Arguments.Add(target);
        cmd.Options.Add(Arch);
        cmd.SetAction(r =>
        {
            var t = new ImageStore(GlobalOptions.Paths(r)).Tag(r.GetValue(source)!, r.GetValue(target)!, r.GetValue(Arch));
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(t, Cli.Json.ImageTagResult);
            else Console.WriteLine($"tagged {t.Digest[..19]}… ({t.Platform}) as {t.Target}");
            return 0;
        });
        return cmd;
    }

    private static Command Prune()
    {
        var all = new Option<bool>("--all", "-a") { Description = "Remove every baseline no workspace uses, not only unnamed ones" };
        var purge = new Option<bool>("--purge") { Description = "As --all, and the pulled content (manifests, configs, layers) too: every image is pulled again next time (needs --yes)" };
        var yes = new Option<bool>("--yes", "-y") { Description = "Confirm --purge" };
        var cmd = new Command("prune", """
            Remove unnamed baselines (with --all: all unused ones) and leftover temporary files; never a baseline a workspace disk uses.

            Examples:
              microagent image prune
              microagent image prune --all --json
              microagent image prune --purge --yes
            """);
        cmd.Options.Add(all);
        cmd.Options.Add(purge);
        cmd.Options.Add(yes);
        cmd.SetAction(r =>
        {
            if (r.GetValue(purge) && !r.GetValue(yes))
                throw Errors.MicroagentException.Invalid("--purge removes every image no workspace uses, and the pulled content: confirm it with --yes",
                    "`microagent image prune --purge --yes`");
            var store = new ImageStore(GlobalOptions.Paths(r));
            var result = r.GetValue(purge) ? store.Purge() : store.Prune(r.GetValue(all));
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(result, Cli.Json.PruneResult);
            else
            {
                foreach (string d in result.RemovedBaselines) Console.WriteLine($"removed {d}");
                foreach (string d in result.KeptInUse) Console.WriteLine($"kept    {d} (in use)");
                Console.WriteLine($"reclaimed {result.ReclaimedBytes >> 20} MiB");
            }
            return 0;
        });
        return cmd;
    }

    private static ImageJson Render(ImageInfo i) => new(i.References, i.Baseline.ManifestDigest, i.Baseline.Platform, i.Baseline.Path,
        i.Baseline.SizeBytes, i.Baseline.ContentBytes, i.Baseline.CompressedBytes, i.Baseline.LayerCount, i.Baseline.CreatedAt,
        i.Baseline.Config, i.UsedBy);
}

/// <summary>
/// Pull/build progress on stderr: one live line (phase, layers, bytes) on a terminal, plain lines on
/// phase changes otherwise, nothing with <c>--json</c> or <c>MICROAGENT_QUIET=1</c>.
/// </summary>
internal sealed class ProgressDisplay : IProgress<ImageProgress>, IDisposable
{
    private readonly bool _live;
    private readonly Lock _lock = new();
    private string? _lastPhase;
    private long _lastDraw;
    private bool _dirty;

    private ProgressDisplay(bool live) => _live = live;

    public static ProgressDisplay? For(System.CommandLine.ParseResult r)
        => r.GetValue(GlobalOptions.Json) || Environment.GetEnvironmentVariable("MICROAGENT_QUIET") == "1"
            ? null
            : new ProgressDisplay(!Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") != "dumb");

    public void Report(ImageProgress p)
    {
        lock (_lock)
        {
            if (!_live)
            {
                if (p.Phase == _lastPhase && p.Phase is "downloading") return;
                _lastPhase = p.Phase;
                Console.Error.WriteLine($"{p.Phase}: {p.Message}");
                return;
            }
            long now = Environment.TickCount64;
            bool phaseChanged = p.Phase != _lastPhase;
            if (!phaseChanged && now - _lastDraw < 100 && p.Phase == "downloading") return;
            _lastDraw = now;
            if (phaseChanged && _dirty && _lastPhase is not null) Console.Error.WriteLine();
            _lastPhase = p.Phase;
            string bar = p.BytesTotal > 0 ? $" {Bar(p.BytesDone, p.BytesTotal)} {Mib(p.BytesDone)}/{Mib(p.BytesTotal)}" : "";
            string layers = p.Layers > 0 ? $" [{p.LayersDone}/{p.Layers} layers]" : "";
            string line = $"{p.Phase,-11}{layers}{bar}  {p.Message}";
            int width = Math.Max(40, SafeWidth() - 1);
            if (line.Length > width) line = line[..width];
            Console.Error.Write($"\r\u001b[2K{line}");
            _dirty = true;
        }
    }

    private static string Bar(long done, long total)
    {
        int filled = (int)Math.Clamp(done * 20 / Math.Max(1, total), 0, 20);
        return "[" + new string('#', filled) + new string('.', 20 - filled) + "]";
    }

    private static string Mib(long b) => $"{b / 1048576.0:0.0}MiB";

    private static int SafeWidth()
    {
        try { return Console.WindowWidth > 0 ? Console.WindowWidth : 100; }
        catch (IOException) { return 100; }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_live && _dirty) Console.Error.WriteLine();
            _dirty = false;
        }
    }
}
