namespace Microagent.Guest;

/// <summary>Build identity reported in <c>hello</c>.</summary>
internal static class AgentInfo
{
    /// <summary>Agent version.</summary>
    public const string Version = "0.1.0";
}
