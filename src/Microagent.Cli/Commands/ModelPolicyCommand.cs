using System.CommandLine;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent model policy validate|evaluate</c> (docs/ARCHITECTURE.md "Model mediation").</summary>
internal static class ModelPolicyCommand
{
    public static Command Create() => new("policy", "Check model policy files (schema microagent.model_policy.v1) without a workspace.");
}
