namespace Microagent.Tests;

/// <summary>
/// Tests that set a process-wide environment variable. xunit runs a collection that disables parallelization on its
/// own, after every parallel collection has finished, so no other test can observe the variable while it is set.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection
{
    public const string Name = "process environment";
}
