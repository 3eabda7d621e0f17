using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microagent.Errors;
using Microagent.Tools;
using Microagent.Workspaces;

namespace Microagent.Models;

/// <summary>
/// The runner registry (docs/ARCHITECTURE.md "Model runner"): <c>&lt;state&gt;/models/runners/ID.json</c> per runner, written
/// atomically under <c>models/runners.lock</c>. A shared runner's id is derived from the model digest and the runner spec's
/// digest, so every workspace with the same pairing holds the same process; holders are workspace names; a runner with no
/// holder that is not pinned is stopped. A record whose process is gone (pid and start time) is dead: it is dropped when
/// listed and restarted when ensured. Readers (the supervisor's forward) read the files without the lock.
/// </summary>
public sealed class ModelRunnerRegistry
{
    private readonly StatePaths _paths;

    /// <summary>A registry under <paramref name="paths"/>.</summary>
    public ModelRunnerRegistry(StatePaths? paths = null) => _paths = paths ?? new StatePaths();

    private string Dir => Path.Combine(_paths.Root, "models", "runners");
    private string LockPath => Path.Combine(_paths.Root, "models", "runners.lock");
    private string RecordPath(string id) => Path.Combine(Dir, id + ".json");

    /// <summary>The shared id of a runner of model <paramref name="sha256"/> with spec digest <paramref name="configDigest"/>.</summary>
    public static string SharedId(string sha256, string configDigest) =>
        "r-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sha256 + "\n" + configDigest)))[..12].ToLowerInvariant();

    /// <summary>
    /// A running runner of <paramref name="model"/> with <paramref name="spec"/>: the shared one (started when absent or dead), or a new
    /// private one with <paramref name="dedicated"/>. <paramref name="holder"/> (a workspace) is added to it and removed from any other;
    /// <paramref name="pin"/> keeps it without holders.
    /// </summary>
    public async Task<ModelRunnerRecord> EnsureAsync(ModelRecord model, ModelRunnerSpec spec, string? holder, bool pin = false, bool dedicated = false,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        StatePaths.EnsureDirectory(Dir);
        using var held = await FileLock.AcquireAsync(LockPath, ct).ConfigureAwait(false);
        string id = dedicated ? "d-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant() : SharedId(model.Sha256, spec.Digest);
        if (holder is not null) await DropHolderAsync(holder, except: id).ConfigureAwait(false);
        var existing = Read(id);
        if (existing is not null && IsAlive(existing))
        {
            var updated = existing with
            {
                Holders = holder is null || existing.Holders.Contains(holder) ? existing.Holders : [.. existing.Holders, holder],
                Pinned = existing.Pinned || pin,
            };
            Write(updated);
            return updated with { Alive = true };
        }
        var started = await StartAsync(id, model, spec, holder is null ? [] : [holder], pin, dedicated, ct).ConfigureAwait(false);
        await new ModelStore(_paths).TouchAsync(model, ct).ConfigureAwait(false);
        return started;
    }

    /// <summary>
    /// <c>model serve</c>: a pinned runner of <paramref name="reference"/> (pulled when missing) that stays up without holders until
    /// <see cref="StopAsync"/>; the shared one (workspaces with the same pairing use it too) or, with <paramref name="dedicated"/>, a private one.
    /// </summary>
    public async Task<ModelRunnerRecord> ServeAsync(string reference, ModelRunnerSpec? spec = null, bool dedicated = false, IProgress<string>? progress = null,
        CancellationToken ct = default)
    {
        var store = new ModelStore(_paths);
        var model = store.Find(reference) ?? await store.PullAsync(reference, new ModelPullOptions { Progress = progress }, ct).ConfigureAwait(false);
        progress?.Report($"starting a runner for {model.Ref}");
        return await EnsureAsync(model, spec ?? new ModelRunnerSpec(), null, pin: true, dedicated, ct).ConfigureAwait(false);
    }

    /// <summary>Removes <paramref name="holder"/> from every runner; runners left without holders that are not pinned are stopped. Returns the ids it was removed from.</summary>
    public async Task<IReadOnlyList<string>> ReleaseAsync(string holder, CancellationToken ct = default)
    {
        if (!Directory.Exists(Dir)) return [];
        using var held = await FileLock.AcquireAsync(LockPath, ct).ConfigureAwait(false);
        return await DropHolderAsync(holder, except: null).ConfigureAwait(false);
    }

    /// <summary>Force-stops every runner of <paramref name="reference"/> (a model reference, digest or runner id), pinned or held; names the workspaces that held them.</summary>
    public async Task<ModelStopResult> StopAsync(string reference, CancellationToken ct = default)
    {
        if (!Directory.Exists(Dir)) return new ModelStopResult([], []);
        using var held = await FileLock.AcquireAsync(LockPath, ct).ConfigureAwait(false);
        string? canonical = null;
        try { canonical = ModelReference.Parse(reference).Canonical; } catch (MicroagentException) { }
        var matching = ReadAll().Where(r => r.Id == reference || r.Ref == canonical || r.Sha256 == reference || r.Sha256 == "sha256:" + reference).ToList();
        foreach (var r in matching)
        {
            await StopOneAsync(r).ConfigureAwait(false);
            foreach (string h in r.Holders)
            {
                var ws = new WorkspaceStore(_paths, h);
                if (ws.Exists) ModelPairer.Mark(ws, $"model_worker=released runner={r.Id} (model stop)");
            }
        }
        return new ModelStopResult([.. matching.Select(r => r.Id)], [.. matching.SelectMany(r => r.Holders).Distinct().Order(StringComparer.Ordinal)]);
    }

    /// <summary>Every runner whose process is alive; dead entries are dropped.</summary>
    public async Task<IReadOnlyList<ModelRunnerRecord>> ListAsync(CancellationToken ct = default)
    {
        if (!Directory.Exists(Dir)) return [];
        using var held = await FileLock.AcquireAsync(LockPath, ct).ConfigureAwait(false);
        var alive = new List<ModelRunnerRecord>();
        foreach (var r in ReadAll().ToList())
        {
            if (IsAlive(r)) alive.Add(r with { Alive = true });
            else File.Delete(RecordPath(r.Id));
        }
        return [.. alive.OrderBy(r => r.Ref, StringComparer.Ordinal).ThenBy(r => r.Id, StringComparer.Ordinal)];
    }

    /// <summary>The runner <paramref name="id"/> when its process is alive (no lock: the supervisor's per-connection lookup).</summary>
    public ModelRunnerRecord? Resolve(string id) => Read(id) is { } r && IsAlive(r) ? r with { Alive = true } : null;

    private async Task<ModelRunnerRecord> StartAsync(string id, ModelRecord model, ModelRunnerSpec spec, IReadOnlyList<string> holders, bool pin, bool dedicated,
        CancellationToken ct)
    {
        if (!File.Exists(model.Path)) throw MicroagentException.NotFound($"the model file {model.Path} is gone", $"pull it again: microagent model pull {model.Ref}");
        int port = RunnerProcess.FreePort();
        string[] argv = RunnerArgv.Build(spec, model.Path, "127.0.0.1", port, RunnerArgv.FindOnPath);
        string log = Path.Combine(Dir, id + ".log");
        var (pid, start) = RunnerProcess.Start(argv, spec.Env, log, Dir);
        var record = new ModelRunnerRecord
        {
            Id = id, Ref = model.Ref, Sha256 = model.Sha256, Backend = ModelRunnerSpec.BackendName(spec.Backend),
            Name = spec.Name ?? ModelRunnerSpec.BackendName(spec.Backend), ConfigDigest = spec.Digest, Port = port, Pid = pid, PidStartTime = start,
            StartedAt = DateTimeOffset.UtcNow, Holders = holders, Pinned = pin, Dedicated = dedicated, ServedModel = spec.ServedModel,
            HealthPath = spec.Health, LogPath = log, Argv = argv,
        };
        Write(record);
        try { await RunnerProcess.WaitReadyAsync(record, RunnerProcess.ReadyWait, ct).ConfigureAwait(false); }
        catch
        {
            await StopOneAsync(record).ConfigureAwait(false);
            throw;
        }
        return record with { Alive = true };
    }

    private async Task<IReadOnlyList<string>> DropHolderAsync(string holder, string? except)
    {
        var from = new List<string>();
        foreach (var r in ReadAll().ToList())
        {
            if (r.Id == except || !r.Holders.Contains(holder)) continue;
            from.Add(r.Id);
            var left = r with { Holders = [.. r.Holders.Where(h => h != holder)] };
            if (left.Holders.Count == 0 && !left.Pinned) await StopOneAsync(left).ConfigureAwait(false);
            else Write(left);
        }
        return from;
    }

    private async Task StopOneAsync(ModelRunnerRecord r)
    {
        await RunnerProcess.StopAsync(r, TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        File.Delete(RecordPath(r.Id));
    }

    private static bool IsAlive(ModelRunnerRecord r) => ProcessTable.IsAlive(r.Pid, r.PidStartTime);

    private IEnumerable<ModelRunnerRecord> ReadAll()
    {
        if (!Directory.Exists(Dir)) yield break;
        foreach (string f in Directory.EnumerateFiles(Dir, "*.json"))
            if (Read(Path.GetFileNameWithoutExtension(f)) is { } r) yield return r;
    }

    private ModelRunnerRecord? Read(string id)
    {
        string path = RecordPath(id);
        try { return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllBytes(path), ModelJson.Default.ModelRunnerRecord) : null; }
        catch (Exception e) when (e is JsonException or IOException) { return null; }
    }

    private void Write(ModelRunnerRecord r) =>
        StatePaths.WriteAtomic(RecordPath(r.Id), JsonSerializer.SerializeToUtf8Bytes(r with { Alive = false }, ModelJson.Default.ModelRunnerRecord));
}
