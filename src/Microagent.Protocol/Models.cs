namespace Microagent.Protocol;

/// <summary>
/// The model forward's constants (docs/ARCHITECTURE.md "Model runner"): the guest agent listens on
/// 127.0.0.1:<see cref="GuestPort"/> and carries each accepted connection, as raw bytes, to host vsock port
/// <see cref="HostPort"/> (CID 2), where the supervisor relays it to the workspace's model runner or its mediator.
/// </summary>
internal static class ModelInfo
{
    /// <summary>Host vsock port (CID 2) the agent connects to for each guest connection to the model forward.</summary>
    public const uint HostPort = 1028;

    /// <summary>The guest loopback port the model forward listens on.</summary>
    public const int GuestPort = 11434;

    /// <summary>What <c>MICROAGENT_MODEL_URL</c> and <c>OPENAI_BASE_URL</c> are set to in the workload and every exec.</summary>
    public const string BaseUrl = "http://127.0.0.1:11434/v1";
}
