using System.Text.Json.Serialization;

namespace Microagent.Protocol;

// Wire format of the console (docs/ARCHITECTURE.md "Console"): an interactive shell on a pseudo-terminal in the guest.
// One vsock connection per console session, to guest port ConsoleInfo.Port (not the agent's request port, so the host's
// vsock backend can sever every console session at once by port). Frames are the protocol's own (Frame.cs: 4-byte
// big-endian length + UTF-8 JSON), in this order:
//   host → guest  Request{type:"console", console: ConsoleRequest}          opens the session
//   guest → host  Response{type:"ok"} | Response{type:"error", error}      the shell started on its terminal, or why not
//   then, concurrently until the end:
//   host → guest  Request{type:"stdin", data}                              bytes typed (written to the terminal's master side)
//                 Request{type:"resize", console:{rows, cols}}             the host terminal's new size (TIOCSWINSZ; the guest
//                                                                          kernel signals SIGWINCH to the shell's foreground job)
//   guest → host  Response{type:"stdout", data}                            bytes the terminal printed (stdout and stderr alike)
//                 Response{type:"result", result}                          the shell ended (exited / signaled); always the last frame
// The host ends a session early (detach) by closing the connection: the guest hangs the terminal up (SIGHUP to the shell's
// session, SIGKILL after ConsoleInfo.HangupGraceMs) and sends nothing more.

/// <summary>Constants of the console protocol.</summary>
internal static class ConsoleInfo
{
    /// <summary>Guest vsock port the agent serves console sessions on (and nothing else); host ports 1025-1028 are the other direction.</summary>
    public const uint Port = 1029;

    /// <summary>Largest terminal dimension accepted (rows or columns).</summary>
    public const int MaxDimension = 1000;

    /// <summary>Longest <see cref="ConsoleRequest.Term"/> accepted.</summary>
    public const int MaxTermLength = 64;

    /// <summary>TERM when the host does not say.</summary>
    public const string DefaultTerm = "xterm-256color";

    /// <summary>How long a hung-up shell has to exit before its session is killed.</summary>
    public const int HangupGraceMs = 2000;

    /// <summary>Shells tried, in order, when the request names none (or names one the image lacks).</summary>
    public static readonly string[] FallbackShells = ["/bin/bash", "/bin/sh"];

    /// <summary>Whether <paramref name="rows"/> × <paramref name="cols"/> is a terminal size the guest accepts.</summary>
    public static bool IsValidSize(int rows, int cols) => rows is > 0 and <= MaxDimension && cols is > 0 and <= MaxDimension;
}

/// <summary>The console's request types (beside <see cref="RequestTypes"/>; <c>stdin</c> is shared with exec).</summary>
internal static class ConsoleRequestTypes
{
    /// <summary>Open a console session: <see cref="Request.Console"/> must be set.</summary>
    public const string Console = "console";
    /// <summary>The terminal's new size: <see cref="Request.Console"/> carries rows and cols.</summary>
    public const string Resize = "resize";
}

/// <summary>A console session's terminal and shell (with <c>console</c>), or only its new size (with <c>resize</c>).</summary>
internal sealed class ConsoleRequest
{
    /// <summary>Terminal rows.</summary>
    [JsonPropertyName("rows")] public int Rows { get; set; } = 24;
    /// <summary>Terminal columns.</summary>
    [JsonPropertyName("cols")] public int Cols { get; set; } = 80;
    /// <summary>TERM for the shell (default <see cref="ConsoleInfo.DefaultTerm"/>).</summary>
    [JsonPropertyName("term")] public string? Term { get; set; }
    /// <summary>Absolute path of the shell; null or absent from the image: the first of <see cref="ConsoleInfo.FallbackShells"/> that exists.</summary>
    [JsonPropertyName("shell")] public string? Shell { get; set; }
    /// <summary>Environment as KEY=VALUE entries (as <see cref="ExecRequest.Env"/>).</summary>
    [JsonPropertyName("env")] public string[]? Env { get; set; }
    /// <summary>Working directory (default <c>/</c>).</summary>
    [JsonPropertyName("cwd")] public string? Cwd { get; set; }
    /// <summary>User: <c>name</c>, <c>uid</c> or <c>uid:gid</c> (default root).</summary>
    [JsonPropertyName("user")] public string? User { get; set; }
}
