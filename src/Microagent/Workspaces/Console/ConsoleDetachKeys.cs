namespace Microagent.Workspaces;

/// <summary>
/// The detach keys of an interactive console (docs/ARCHITECTURE.md "Console"): Ctrl-] (0x1D), or Ctrl-P Ctrl-Q (0x10 0x11) as
/// in Docker. Everything else typed passes through. A Ctrl-P is held back until the next byte shows whether it starts the
/// sequence (then both are swallowed) or not (then it is passed on before that byte).
/// </summary>
public sealed class ConsoleDetachKeys
{
    /// <summary>Ctrl-].</summary>
    public const byte CtrlBracket = 0x1D;
    /// <summary>Ctrl-P.</summary>
    public const byte CtrlP = 0x10;
    /// <summary>Ctrl-Q.</summary>
    public const byte CtrlQ = 0x11;

    /// <summary>How the user detaches, as the CLI says it.</summary>
    public const string Help = "Ctrl-] or Ctrl-P Ctrl-Q";

    private bool _heldCtrlP;

    /// <summary>
    /// Filters one chunk of typed input: the bytes to send go to <paramref name="forward"/>; returns true when a detach key
    /// arrived (nothing typed after it in the chunk is forwarded).
    /// </summary>
    public bool Filter(ReadOnlySpan<byte> typed, List<byte> forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        foreach (byte b in typed)
        {
            if (_heldCtrlP)
            {
                _heldCtrlP = false;
                if (b == CtrlQ) return true;
                forward.Add(CtrlP);
            }
            if (b == CtrlBracket) return true;
            if (b == CtrlP) { _heldCtrlP = true; continue; }
            forward.Add(b);
        }
        return false;
    }
}
