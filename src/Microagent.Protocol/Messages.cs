using System.Text.Json.Serialization;

namespace Microagent.Protocol;

/// <summary>Protocol constants shared by host and guest.</summary>
internal static class ProtocolInfo
{
    /// <summary>Wire protocol version; bumped on incompatible change.</summary>
    public const int Version = 1;

    /// <summary>Guest vsock port the agent listens on for requests (one connection per request).</summary>
    public const uint AgentPort = 1024;

    /// <summary>Host vsock port (CID 2) the agent connects to once, to announce it is ready.</summary>
    public const uint ReadyPort = 1025;

    /// <summary>Guest CID given to every workspace VM (each VM has its own vsock device).</summary>
    public const ulong GuestCid = 3;
}

/// <summary>Request kinds (the <c>type</c> field of <see cref="Request"/>).</summary>
internal static class RequestTypes
{
    /// <summary>Liveness check; answered with a <c>pong</c> response.</summary>
    public const string Ping = "ping";
    /// <summary>Structured exec: <see cref="Request.Exec"/> must be set.</summary>
    public const string Exec = "exec";
    /// <summary>Host stdin chunk for a streaming exec with <see cref="ExecRequest.StdinStream"/>.</summary>
    public const string Stdin = "stdin";
    /// <summary>Sync disks and power the VM off.</summary>
    public const string Shutdown = "shutdown";
    /// <summary>Set the guest's wall clock to <see cref="Request.ClockUnixNs"/> (after a resume its clock lags by the paused time); answered <c>ok</c>.</summary>
    public const string SetClock = "set-clock";
    /// <summary>Mix <see cref="Request.Data"/> (host entropy) into the kernel RNG (after a restore or fork clones share its state); answered <c>ok</c>.</summary>
    public const string Reseed = "reseed";
    /// <summary>Take <see cref="Request.Hostname"/> and <see cref="Request.MachineId"/> as this guest's identity (a fork of a snapshot); answered <c>ok</c>.</summary>
    public const string Identity = "identity";
    /// <summary>Set up the guest's network path (<see cref="Request.Network"/>); answered <c>ok</c> or <c>error</c>.</summary>
    public const string Network = "network";
    /// <summary>Relay this connection to the guest's 127.0.0.1:<see cref="Request.ForwardPort"/> (published ports); answered <c>ok</c>, then raw bytes.</summary>
    public const string Forward = "forward";
    /// <summary>Report the network counters; answered <c>net-stats</c>.</summary>
    public const string NetStats = "net-stats";
    /// <summary>Report the guest's memory and uptime (Stats.cs); answered <c>guest-stats</c>.</summary>
    public const string GuestStats = "guest-stats";
    /// <summary>Mount a data disk (<see cref="Request.Mount"/>, Mounts.cs); answered <c>ok</c> or <c>error</c>.</summary>
    public const string Mount = "mount";
    /// <summary>Start the model forward: listen on 127.0.0.1:<see cref="ModelInfo.GuestPort"/> and carry each connection to host vsock port <see cref="ModelInfo.HostPort"/> (Models.cs); answered <c>ok</c> or <c>error</c>.</summary>
    public const string ModelForward = "model-forward";
}

/// <summary>Response kinds (the <c>type</c> field of <see cref="Response"/>).</summary>
internal static class ResponseTypes
{
    /// <summary>Sent once by the guest on the ready port after boot.</summary>
    public const string Hello = "hello";
    /// <summary>Answer to ping.</summary>
    public const string Pong = "pong";
    /// <summary>Chunk of the workload's stdout (stream mode).</summary>
    public const string Stdout = "stdout";
    /// <summary>Chunk of the workload's stderr (stream mode).</summary>
    public const string Stderr = "stderr";
    /// <summary>Final exec result; always the last frame of an exec.</summary>
    public const string Result = "result";
    /// <summary>Acknowledges a request that has no other answer (shutdown).</summary>
    public const string Ok = "ok";
    /// <summary>The request could not be served; see <see cref="Response.Error"/>.</summary>
    public const string Error = "error";
    /// <summary>Answer to net-stats; see <see cref="Response.NetStats"/>.</summary>
    public const string NetStats = "net-stats";
    /// <summary>Answer to guest-stats; see <see cref="Response.GuestStats"/>.</summary>
    public const string GuestStats = "guest-stats";
}

/// <summary>Exec output modes.</summary>
internal static class ExecModes
{
    /// <summary>One result frame carrying captured stdout/stderr.</summary>
    public const string Single = "single";
    /// <summary>stdout/stderr chunk frames as they are produced, then one result frame.</summary>
    public const string Stream = "stream";
}

/// <summary>How an exec ended.</summary>
internal static class ExecStatuses
{
    /// <summary>The process exited; <see cref="ExecResult.ExitCode"/> is its code.</summary>
    public const string Exited = "exited";
    /// <summary>The process died from a signal; <see cref="ExecResult.Signal"/> is its number.</summary>
    public const string Signaled = "signaled";
    /// <summary>The timeout elapsed; the process group was killed.</summary>
    public const string TimedOut = "timed_out";
    /// <summary>The process could not be started (no such file, not executable, bad cwd or user).</summary>
    public const string FailedToStart = "failed_to_start";
}

/// <summary>One request from host to guest. Exactly the field named by <see cref="Type"/> is set.</summary>
internal sealed class Request
{
    /// <summary>Protocol version of the sender.</summary>
    [JsonPropertyName("v")] public int Version { get; set; } = ProtocolInfo.Version;
    /// <summary>One of <see cref="RequestTypes"/>.</summary>
    [JsonPropertyName("type")] public string Type { get; set; } = "";
    /// <summary>Exec parameters when <see cref="Type"/> is <c>exec</c>.</summary>
    [JsonPropertyName("exec")] public ExecRequest? Exec { get; set; }
    /// <summary>Stdin bytes when <see cref="Type"/> is <c>stdin</c>; host entropy with <c>reseed</c>.</summary>
    [JsonPropertyName("data")] public byte[]? Data { get; set; }
    /// <summary>With <c>stdin</c>: no more input follows; the guest closes the workload's stdin.</summary>
    [JsonPropertyName("eof")] public bool Eof { get; set; }
    /// <summary>With <c>set-clock</c>: the host's wall clock, in nanoseconds since the Unix epoch.</summary>
    [JsonPropertyName("clockUnixNs")] public long? ClockUnixNs { get; set; }
    /// <summary>With <c>identity</c>: the guest's new hostname.</summary>
    [JsonPropertyName("hostname")] public string? Hostname { get; set; }
    /// <summary>With <c>identity</c>: the guest's new machine-id (32 lowercase hex digits).</summary>
    [JsonPropertyName("machineId")] public string? MachineId { get; set; }
    /// <summary>With <c>network</c>: what to set up (Network.cs).</summary>
    [JsonPropertyName("network")] public NetworkSetup? Network { get; set; }
    /// <summary>With <c>forward</c>: the guest loopback port to relay to.</summary>
    [JsonPropertyName("forwardPort")] public int? ForwardPort { get; set; }
    /// <summary>With <c>mount</c>: the disk and where to mount it (Mounts.cs).</summary>
    [JsonPropertyName("mount")] public MountRequest? Mount { get; set; }
    /// <summary>With <c>console</c>: the terminal and shell; with <c>resize</c>: the new size (Console.cs).</summary>
    [JsonPropertyName("console")] public ConsoleRequest? Console { get; set; }
}

/// <summary>Structured exec: argv is executed directly (no implied shell).</summary>
internal sealed class ExecRequest
{
    /// <summary>Program and arguments; argv[0] is looked up in PATH from <see cref="Env"/> when it has no slash.</summary>
    [JsonPropertyName("argv")] public string[] Argv { get; set; } = [];
    /// <summary>Environment as KEY=VALUE entries; replaces the agent's default environment entries with the same key.</summary>
    [JsonPropertyName("env")] public string[]? Env { get; set; }
    /// <summary>Working directory (default <c>/</c>).</summary>
    [JsonPropertyName("cwd")] public string? Cwd { get; set; }
    /// <summary>User: <c>name</c>, <c>uid</c> or <c>uid:gid</c> (default root).</summary>
    [JsonPropertyName("user")] public string? User { get; set; }
    /// <summary>Whole stdin, given inline. Null with no stream means empty stdin.</summary>
    [JsonPropertyName("stdin")] public byte[]? Stdin { get; set; }
    /// <summary>Stdin arrives as <c>stdin</c> request frames on the same connection after this request.</summary>
    [JsonPropertyName("stdinStream")] public bool StdinStream { get; set; }
    /// <summary>Kill the process group after this many milliseconds (0 or null = no limit).</summary>
    [JsonPropertyName("timeoutMs")] public long? TimeoutMs { get; set; }
    /// <summary>Per-stream cap on captured (single) or forwarded (stream) output bytes; excess is dropped and flagged.</summary>
    [JsonPropertyName("maxOutputBytes")] public long? MaxOutputBytes { get; set; }
    /// <summary>One of <see cref="ExecModes"/>.</summary>
    [JsonPropertyName("mode")] public string Mode { get; set; } = ExecModes.Single;
    /// <summary>
    /// A job id (the workload): the agent starts the command only when it has no job of that id, and a connection with an id
    /// it knows waits for that job's result instead. A job outlives its connection (a capture or restore resets every vsock
    /// connection; the process lives on in guest memory) and keeps its result for the next connection that asks. Single mode,
    /// no streamed stdin.
    /// </summary>
    [JsonPropertyName("jobId")] public string? JobId { get; set; }
}

/// <summary>One frame from guest to host.</summary>
internal sealed class Response
{
    /// <summary>Protocol version of the sender.</summary>
    [JsonPropertyName("v")] public int Version { get; set; } = ProtocolInfo.Version;
    /// <summary>One of <see cref="ResponseTypes"/>.</summary>
    [JsonPropertyName("type")] public string Type { get; set; } = "";
    /// <summary>Output bytes for <c>stdout</c>/<c>stderr</c> chunks.</summary>
    [JsonPropertyName("data")] public byte[]? Data { get; set; }
    /// <summary>Set when <see cref="Type"/> is <c>result</c>.</summary>
    [JsonPropertyName("result")] public ExecResult? Result { get; set; }
    /// <summary>Set when <see cref="Type"/> is <c>hello</c>.</summary>
    [JsonPropertyName("hello")] public Hello? Hello { get; set; }
    /// <summary>Set when <see cref="Type"/> is <c>error</c>.</summary>
    [JsonPropertyName("error")] public ProtocolError? Error { get; set; }
    /// <summary>With <c>net-stats</c>: the guest's network counters (Network.cs).</summary>
    [JsonPropertyName("netStats")] public NetStats? NetStats { get; set; }
    /// <summary>With <c>guest-stats</c>: the guest's memory and uptime (Stats.cs).</summary>
    [JsonPropertyName("guestStats")] public GuestStats? GuestStats { get; set; }
    /// <summary>With <c>pong</c> and the <c>ok</c> of <c>set-clock</c>: the guest's wall clock as it answered, in nanoseconds since the Unix epoch.</summary>
    [JsonPropertyName("clockUnixNs")] public long? ClockUnixNs { get; set; }
}

/// <summary>The outcome of one exec.</summary>
internal sealed class ExecResult
{
    /// <summary>One of <see cref="ExecStatuses"/>.</summary>
    [JsonPropertyName("status")] public string Status { get; set; } = "";
    /// <summary>Exit code when exited; 128+signal when signaled; 124 on timeout; 127 when failed to start.</summary>
    [JsonPropertyName("exitCode")] public int ExitCode { get; set; }
    /// <summary>Signal number when signaled (or the signal used on timeout).</summary>
    [JsonPropertyName("signal")] public int? Signal { get; set; }
    /// <summary>Captured stdout (single mode only).</summary>
    [JsonPropertyName("stdout")] public byte[]? Stdout { get; set; }
    /// <summary>Captured stderr (single mode only).</summary>
    [JsonPropertyName("stderr")] public byte[]? Stderr { get; set; }
    /// <summary>stdout exceeded the output limit and was cut.</summary>
    [JsonPropertyName("stdoutTruncated")] public bool StdoutTruncated { get; set; }
    /// <summary>stderr exceeded the output limit and was cut.</summary>
    [JsonPropertyName("stderrTruncated")] public bool StderrTruncated { get; set; }
    /// <summary>Wall time from spawn to exit, in milliseconds.</summary>
    [JsonPropertyName("durationMs")] public long DurationMs { get; set; }
    /// <summary>Why the process failed to start (failed_to_start only).</summary>
    [JsonPropertyName("error")] public string? Error { get; set; }
    /// <summary>The guest kernel's OOM killer chose a process of this command (it ended with SIGKILL while the kernel's oom_kill count rose).</summary>
    [JsonPropertyName("oomKilled")] public bool OomKilled { get; set; }
    /// <summary>A human note on how the command ended (for example the OOM killer's choice); null when there is nothing to add.</summary>
    [JsonPropertyName("note")] public string? Note { get; set; }
}

/// <summary>Sent by the agent when it is ready to serve exec.</summary>
internal sealed class Hello
{
    /// <summary>Agent build version.</summary>
    [JsonPropertyName("agentVersion")] public string AgentVersion { get; set; } = "";
    /// <summary>Guest kernel release (uname -r).</summary>
    [JsonPropertyName("kernel")] public string Kernel { get; set; } = "";
    /// <summary>Milliseconds since kernel start when the agent became ready (from /proc/uptime).</summary>
    [JsonPropertyName("uptimeMs")] public long UptimeMs { get; set; }
    /// <summary>Milliseconds the agent spent from its start to ready (modules, mount, switch root).</summary>
    [JsonPropertyName("agentInitMs")] public long AgentInitMs { get; set; }
}

/// <summary>A request the guest could not serve.</summary>
internal sealed class ProtocolError
{
    /// <summary>Error kind (docs/ARCHITECTURE.md "Errors": invalid, unsupported, ...).</summary>
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
    /// <summary>Human-readable reason.</summary>
    [JsonPropertyName("message")] public string Message { get; set; } = "";
}

/// <summary>Source-generated JSON metadata: AOT-safe, no reflection.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Request))]
[JsonSerializable(typeof(Response))]
internal sealed partial class ProtocolJson : JsonSerializerContext;
