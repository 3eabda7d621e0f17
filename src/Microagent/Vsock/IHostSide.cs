namespace Microagent.Vsock;

/// <summary>
/// The unix-socket end of one vsock connection, driven by the device loop. Implementations never block the caller:
/// writes are queued to a per-connection writer, reads deliver at most one chunk at a time back to the device.
/// </summary>
internal interface IHostSide
{
    /// <summary>The guest accepted (host-initiated: write <c>OK &lt;hostPort&gt;\n</c> first) or the host connect succeeded; start relaying.</summary>
    void Established(uint? announceHostPort);

    /// <summary>Queues <paramref name="length"/> bytes of a pooled array for the unix side; ownership of the array passes to the callee.</summary>
    void Write(byte[] pooledBuffer, int length);

    /// <summary>After queued writes drain, shut the unix socket down for writing.</summary>
    void ShutdownWrite();

    /// <summary>The previously delivered chunk is consumed; the reader may read the next one.</summary>
    void RequestRead();

    /// <summary>Closes the unix side: at once (dropping queued writes) when <paramref name="abort"/>, else after queued writes drain.</summary>
    void Close(bool abort);
}
