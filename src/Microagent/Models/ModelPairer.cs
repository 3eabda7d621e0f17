using Microagent.Workspaces;

namespace Microagent.Models;

/// <summary>
/// Pairs a workspace with its model runner on every start and releases it on halt, stop, kill and delete
/// (docs/ARCHITECTURE.md "Model runner"): the model is pulled when missing, the runner ensured and the workspace registered
/// as a holder; each attach and release is a <c>model_worker=attached</c> / <c>model_worker=released</c> event.
/// </summary>
internal static class ModelPairer
{
    /// <summary>Ensures the runner of <paramref name="pairing"/> with <paramref name="env"/> (this boot's runner environment) and holds it for <paramref name="store"/>.</summary>
    public static async Task<ModelAttachment> AttachAsync(StatePaths paths, WorkspaceStore store, ModelPairing pairing, IReadOnlyList<string> env,
        IProgress<string>? progress, CancellationToken ct)
    {
        var models = new ModelStore(paths);
        var model = models.Find(pairing.Ref) ?? await models.PullAsync(pairing.Ref, new ModelPullOptions { Progress = progress }, ct).ConfigureAwait(false);
        progress?.Report($"ensuring the model runner for {pairing.Ref}");
        var runner = await new ModelRunnerRegistry(paths).EnsureAsync(model, pairing.Runner with { Env = env }, store.Name, ct: ct).ConfigureAwait(false);
        Mark(store, $"model_worker=attached runner={runner.Id} model={pairing.Ref} port={runner.Port}");
        return new ModelAttachment(pairing.Ref, runner.Id, pairing.Mediation);
    }

    /// <summary>Drops <paramref name="store"/>'s hold on any runner (stopping one left without holders); records the release when there was one.</summary>
    public static async Task ReleaseAsync(StatePaths paths, WorkspaceStore store, CancellationToken ct)
    {
        var from = await new ModelRunnerRegistry(paths).ReleaseAsync(store.Name, ct).ConfigureAwait(false);
        if (from.Count > 0 && store.Exists) Mark(store, $"model_worker=released runner={string.Join(",", from)}");
    }

    /// <summary>Records a marker event (state unchanged).</summary>
    public static void Mark(WorkspaceStore store, string detail)
    {
        var state = store.ReadState().State;
        store.AppendEvent(new WorkspaceEvent(store.Name, state, state, detail, DateTimeOffset.UtcNow));
    }
}
