namespace Microagent.Models;

/// <summary>Where a workspace's model runner listens now (re-resolved for every guest connection: a restarted runner may move).</summary>
/// <param name="Host">Loopback address of the runner.</param>
/// <param name="Port">Its TCP port.</param>
/// <param name="RunnerId">The runner registry's id for it.</param>
/// <param name="ServedModel">The model name the runner serves, when it has one.</param>
internal sealed record ModelEndpoint(string Host, int Port, string RunnerId, string? ServedModel);

/// <summary>Resolves the runner a workspace's model forward reaches (the runner registry implements it).</summary>
internal interface IModelEndpointSource
{
    /// <summary>The runner's endpoint now; null when none is running (the guest's connection is then closed).</summary>
    ValueTask<ModelEndpoint?> ResolveAsync(CancellationToken ct);
}

/// <summary>The HTTP mediator between the guest's model forward and the runner (modes other than <see cref="ModelMediationMode.Off"/>).</summary>
internal interface IModelMediator : IAsyncDisposable
{
    /// <summary>Serves one guest connection (HTTP/1.1, possibly keep-alive) until it closes, deciding and auditing each request.</summary>
    Task ServeAsync(Stream guest, IModelEndpointSource upstream, CancellationToken ct);
}
