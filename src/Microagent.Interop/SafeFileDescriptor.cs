using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Microagent.Interop;

/// <summary>
/// An owned Linux file descriptor. Invariants: -1 is the only invalid value (descriptor 0 is a real one);
/// close(2) runs exactly once, when the last of <see cref="SafeHandle.Dispose()"/> and the in-flight calls that hold it
/// (see <see cref="FdLease"/>) is done, so a blocked read never races a close that could recycle the number.
/// A handle made with <c>ownsHandle: false</c> never closes its descriptor.
/// </summary>
internal sealed class SafeFileDescriptor : SafeHandleMinusOneIsInvalid
{
    /// <summary>An invalid handle (-1); used by the marshaller and for "no descriptor".</summary>
    public SafeFileDescriptor() : base(ownsHandle: true) => SetHandle(-1);

    /// <summary>Wraps <paramref name="fd"/>; when <paramref name="ownsHandle"/>, disposing the handle closes it.</summary>
    public SafeFileDescriptor(int fd, bool ownsHandle = true) : base(ownsHandle) => SetHandle(fd);

    /// <summary>The descriptor number, for logging and for handing to a child process; -1 when invalid. Never close it by hand.</summary>
    public int DangerousFd => (int)DangerousGetHandle();

    /// <inheritdoc />
    protected override bool ReleaseHandle()
    {
        // Linux releases the descriptor even when close(2) fails (EINTR included): never retry.
        FileDescriptors.CloseRaw((int)handle);
        return true;
    }
}

/// <summary>
/// Holds a reference on a <see cref="SafeHandle"/> for the duration of one system call (DangerousAddRef/Release),
/// so the descriptor number cannot be closed and reused underneath the call. Throws <see cref="ObjectDisposedException"/>
/// when the handle is already closed.
/// </summary>
internal ref struct FdLease
{
    private readonly SafeHandle _handle;
    private bool _added;

    public FdLease(SafeHandle handle)
    {
        _handle = handle;
        _added = false;
        handle.DangerousAddRef(ref _added);
        Fd = (int)handle.DangerousGetHandle();
    }

    /// <summary>The raw descriptor, valid until <see cref="Dispose"/>.</summary>
    public int Fd { get; }

    public void Dispose()
    {
        if (_added) _handle.DangerousRelease();
        _added = false;
    }
}
