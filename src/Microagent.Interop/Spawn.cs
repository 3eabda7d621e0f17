using System.Runtime.InteropServices;
using System.Text;

namespace Microagent.Interop;

/// <summary>
/// posix_spawn(3) with file actions and attributes (glibc, include/spawn.h). glibc reports exec
/// failures (ENOENT, EACCES, ...) as the return value, so no fork happens in managed code.
/// </summary>
internal static unsafe partial class Spawn
{
    /// <summary>POSIX_SPAWN_SETSIGDEF.</summary>
    private const short POSIX_SPAWN_SETSIGDEF = 0x04;
    /// <summary>POSIX_SPAWN_SETSIGMASK.</summary>
    private const short POSIX_SPAWN_SETSIGMASK = 0x08;
    /// <summary>POSIX_SPAWN_SETSID (glibc 2.26+).</summary>
    private const short POSIX_SPAWN_SETSID = 0x80;

    // Opaque glibc structures: posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336 bytes and
    // sigset_t 128 bytes on x86_64; the buffers are over-sized on purpose.
    private const int OpaqueBytes = 1024;

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawn")]
    private static partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawn_file_actions_init")]
    private static partial int FileActionsInit(void* fa);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawn_file_actions_destroy")]
    private static partial int FileActionsDestroy(void* fa);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static partial int FileActionsAddDup2(void* fa, int fd, int newFd);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawn_file_actions_addopen")]
    private static partial int FileActionsAddOpen(void* fa, int fd, byte* path, int oflag, uint mode);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    private static partial int FileActionsAddChdir(void* fa, byte* path);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawnattr_init")]
    private static partial int AttrInit(void* attr);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawnattr_destroy")]
    private static partial int AttrDestroy(void* attr);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawnattr_setflags")]
    private static partial int AttrSetFlags(void* attr, short flags);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawnattr_setsigmask")]
    private static partial int AttrSetSigMask(void* attr, void* sigset);

    [LibraryImport(Libc.Name, EntryPoint = "posix_spawnattr_setsigdefault")]
    private static partial int AttrSetSigDefault(void* attr, void* sigset);

    [LibraryImport(Libc.Name, EntryPoint = "sigemptyset")]
    private static partial int SigEmptySet(void* set);

    [LibraryImport(Libc.Name, EntryPoint = "sigfillset")]
    private static partial int SigFillSet(void* set);

    [LibraryImport(Libc.Name, EntryPoint = "access", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int AccessRaw(string path, int mode);

    /// <summary>access(path, X_OK); returns 0 or errno.</summary>
    public static int CheckExecutable(string path) => AccessRaw(path, 1) < 0 ? Libc.LastErrno : 0;

    /// <summary>
    /// Starts <paramref name="path"/> in a new session (so its process group can be killed as one),
    /// with an empty signal mask, every signal at its default disposition, descriptors 0/1/2 taken
    /// from <paramref name="stdinFd"/>/<paramref name="stdoutFd"/>/<paramref name="stderrFd"/>, and
    /// working directory <paramref name="cwd"/>. Returns 0 and the child pid, or the errno.
    /// </summary>
    public static int Start(string path, string[] argv, string[] envp, string cwd,
        SafeFileDescriptor stdinFd, SafeFileDescriptor stdoutFd, SafeFileDescriptor stderrFd, out int pid)
    {
        using var stdin = new FdLease(stdinFd);
        using var stdout = new FdLease(stdoutFd);
        using var stderr = new FdLease(stderrFd);
        return StartCore(path, argv, envp, cwd, null, stdin.Fd, stdout.Fd, stderr.Fd, out pid);
    }

    /// <summary>
    /// Starts <paramref name="path"/> as the session leader of a new session whose controlling terminal is the pseudo-terminal
    /// slave <paramref name="terminalPath"/>, opened as descriptors 0, 1 and 2. glibc's posix_spawn runs setsid before the file
    /// actions, and on Linux a session leader without a controlling terminal that opens a terminal without O_NOCTTY acquires
    /// it (the effect of TIOCSCTTY), so no code runs between fork and exec. Otherwise as <see cref="Start"/>. Returns 0 and the
    /// child pid, or the errno.
    /// </summary>
    public static int StartOnTerminal(string path, string[] argv, string[] envp, string cwd, string terminalPath, out int pid)
        => StartCore(path, argv, envp, cwd, terminalPath, 0, 0, 0, out pid);

    /// <summary>
    /// The one posix_spawn setup behind <see cref="Start"/> and <see cref="StartOnTerminal"/>: new session, empty signal
    /// mask, default dispositions, working directory <paramref name="cwd"/>. Descriptor 0 is <paramref name="terminalPath"/>
    /// opened read-write when given, else a dup of <paramref name="stdinFd"/>; 1 and 2 are dups of
    /// <paramref name="stdoutFd"/>/<paramref name="stderrFd"/> (0 and 0 for a terminal). Returns 0 and the pid, or the errno.
    /// </summary>
    private static int StartCore(string path, string[] argv, string[] envp, string cwd, string? terminalPath,
        int stdinFd, int stdoutFd, int stderrFd, out int pid)
    {
        pid = -1;
        byte* fa = (byte*)NativeMemory.AllocZeroed(OpaqueBytes);
        byte* attr = (byte*)NativeMemory.AllocZeroed(OpaqueBytes);
        byte* sigs = (byte*)NativeMemory.AllocZeroed(OpaqueBytes);
        byte* pathZ = Utf8Z(path);
        byte* cwdZ = Utf8Z(cwd);
        byte* ttyZ = terminalPath is null ? null : Utf8Z(terminalPath);
        byte** argvZ = Utf8Array(argv);
        byte** envZ = Utf8Array(envp);
        bool faInit = false, attrInit = false;
        try
        {
            int r;
            if ((r = FileActionsInit(fa)) != 0) return r;
            faInit = true;
            if (ttyZ != null)
            {
                if ((r = FileActionsAddOpen(fa, 0, ttyZ, 0x2 /* O_RDWR */, 0)) != 0) return r;
            }
            else if ((r = FileActionsAddDup2(fa, stdinFd, 0)) != 0) return r;
            if ((r = FileActionsAddDup2(fa, stdoutFd, 1)) != 0) return r;
            if ((r = FileActionsAddDup2(fa, stderrFd, 2)) != 0) return r;
            if ((r = FileActionsAddChdir(fa, cwdZ)) != 0) return r;

            if ((r = AttrInit(attr)) != 0) return r;
            attrInit = true;
            if ((r = AttrSetFlags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0) return r;
            SigEmptySet(sigs);
            if ((r = AttrSetSigMask(attr, sigs)) != 0) return r;
            SigFillSet(sigs);
            if ((r = AttrSetSigDefault(attr, sigs)) != 0) return r;

            int child;
            r = PosixSpawn(&child, pathZ, fa, attr, argvZ, envZ);
            if (r == 0) pid = child;
            return r;
        }
        finally
        {
            if (faInit) FileActionsDestroy(fa);
            if (attrInit) AttrDestroy(attr);
            NativeMemory.Free(fa);
            NativeMemory.Free(attr);
            NativeMemory.Free(sigs);
            NativeMemory.Free(pathZ);
            NativeMemory.Free(cwdZ);
            if (ttyZ != null) NativeMemory.Free(ttyZ);
            FreeArray(argvZ, argv.Length);
            FreeArray(envZ, envp.Length);
        }
    }

    private static byte* Utf8Z(string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }

    private static byte** Utf8Array(string[] items)
    {
        byte** a = (byte**)NativeMemory.Alloc((nuint)(items.Length + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < items.Length; i++) a[i] = Utf8Z(items[i]);
        a[items.Length] = null;
        return a;
    }

    private static void FreeArray(byte** a, int count)
    {
        for (int i = 0; i < count; i++) NativeMemory.Free(a[i]);
        NativeMemory.Free(a);
    }
}
