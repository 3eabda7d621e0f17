namespace Microagent.Models.Mediation;

/// <summary>An answer the mediator gives itself instead of the runner's: status, OpenAI error type and code, and a message.</summary>
/// <param name="Status">HTTP status.</param>
/// <param name="Type">The error's <c>type</c>.</param>
/// <param name="Code">The error's <c>code</c>.</param>
/// <param name="Message">What happened (no prompt text).</param>
internal sealed record MediatorError(int Status, string Type, string Code, string Message)
{
    /// <summary>The policy denied the request (403).</summary>
    public static MediatorError Denied(string reason) => new(403, "policy_denied", "model_policy_denied", $"denied by the model policy: {reason}");

    /// <summary>The policy could not decide (503: fail closed).</summary>
    public static MediatorError PolicyFailed(string reason) => new(503, "policy_error", "model_policy_unavailable", $"the model policy could not decide, so the request is refused: {reason}");

    /// <summary>The runner is not there or failed before answering (502).</summary>
    public static MediatorError Runner(string reason) => new(502, "runner_error", "model_runner_unavailable", $"the model runner failed: {reason}");

    /// <summary>The request could not be read (400, 408, 413, 431).</summary>
    public static MediatorError Bad(int status, string reason) => new(status, "invalid_request_error", status switch
    {
        408 => "request_timeout",
        413 => "request_too_large",
        431 => "headers_too_large",
        _ => "invalid_request",
    }, reason);
}
