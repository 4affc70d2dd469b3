using System;
using System.ComponentModel;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace KeyShell.Engine.Logging;

/// <summary>
/// One open conversation log file that no other process writes while it is open, written a batch at a
/// time. The platforms differ only here:
/// <list type="bullet">
/// <item>Linux: libc's open (appending), then an open-file-description lock (<c>F_OFD_SETLK</c>, write):
/// it does not interact with the <c>flock(LOCK_SH)</c> that .NET takes for every reader (Get-Content,
/// Test-KeyConversation in another process), the kernel releases it when the process dies, however it dies,
/// and it belongs to this one open file, which this process shares among its owners. (.NET's own
/// <c>FileShare.None</c> would be <c>flock(LOCK_EX)</c>, and every other process's reader would fail.)</item>
/// <item>Windows: a FileStream that lets others read and delete, never write (<c>FileShare.Read</c>).</item>
/// <item>Elsewhere (macOS, BSD): the same FileStream, but these systems have no such lock and .NET's
/// FileShare is advisory there, so another process is not kept out.</item>
/// </list>
/// In every case the file is opened without truncating it, locked, and only then emptied: a process that
/// finds the file in use changes nothing in it. A device or a pipe is neither locked nor emptied. (On NFS,
/// Linux turns a reader's flock into a byte-range lock, which this lock does meet: there another process's
/// reader is refused while the log is written.)
/// </summary>
internal abstract class LogFile : IDisposable
{
    private static readonly bool OnLinux =
        RuntimeInformation.IsOSPlatform(OSPlatform.Linux) &&
        (RuntimeInformation.ProcessArchitecture == Architecture.X64 || RuntimeInformation.ProcessArchitecture == Architecture.Arm64);

    private static readonly bool OnWindows = RuntimeInformation.IsOSPlatform(OSPlatform.Windows);

    /// <summary>How two names of one file compare in this process's table of open logs.</summary>
    public static StringComparer NameComparer { get; } = OnWindows ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;

    /// <summary>Opens <paramref name="fullPath"/> for appending and locks it; empties it when
    /// <paramref name="empty"/>. Throws <see cref="LogPathInUseException"/> when another process holds it,
    /// <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/> when it cannot be written.</summary>
    public static LogFile Open(string fullPath, bool empty) =>
        OnLinux ? LinuxLogFile.OpenFile(fullPath, empty) : StreamLogFile.OpenFile(fullPath, empty);

    /// <summary>The name under which this process shares a file: on Linux with every symbolic link resolved
    /// (a file named through a linked folder is the same file), elsewhere the full path.</summary>
    public static string Identity(string fullPath) => OnLinux ? LinuxLogFile.Resolve(fullPath) : fullPath;

    /// <summary>Writes all of <paramref name="bytes"/> into the file (the kernel's page cache) before it
    /// returns: one write call for a batch, save for a short write. Throws <see cref="IOException"/>.</summary>
    public abstract void Write(ReadOnlySpan<byte> bytes);

    public abstract void Dispose();

    private sealed unsafe class LinuxLogFile : LogFile
    {
        private const string Libc = "libc";
        private const int O_WRONLY = 0x1, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000;
        private const int F_OFD_SETLK = 37;
        private const short F_WRLCK = 1;
        private const int EINTR = 4, EAGAIN = 11, EACCES = 13, EPERM = 1, ENOENT = 2, ENOTDIR = 20, EISDIR = 21, EROFS = 30;
        private const int AT_EMPTY_PATH = 0x1000, STATX_TYPE = 0x1, StatxModeOffset = 28, StatxSize = 256;
        private const int S_IFMT = 0xF000, S_IFREG = 0x8000;
        private const int CreateMode = 0x1B6; // 0666, less the umask: what .NET creates files with

        private static readonly byte[] EmptyPath = { 0 };

        private readonly string _path;
        private int _fd;

        private LinuxLogFile(string path, int fd)
        {
            _path = path;
            _fd = fd;
        }

        public static LogFile OpenFile(string path, bool empty)
        {
            var fd = open(CString(path), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, CreateMode);
            if (fd < 0)
            {
                throw ErrorFor(Marshal.GetLastWin32Error(), path);
            }

            try
            {
                // A device or a pipe (/dev/null, /dev/full) is no one's log: shared by all, never emptied.
                if (IsRegularFile(fd))
                {
                    Lock(fd, path);
                    if (empty && ftruncate(fd, 0) < 0)
                    {
                        throw ErrorFor(Marshal.GetLastWin32Error(), path);
                    }
                }

                return new LinuxLogFile(path, fd);
            }
            catch
            {
                close(fd);
                throw;
            }
        }

        public static string Resolve(string fullPath)
        {
            // An existing file resolves whole; a file still to be made, through its folder.
            var resolved = RealPath(fullPath);
            if (resolved is not null)
            {
                return resolved;
            }

            var folder = Path.GetDirectoryName(fullPath);
            var resolvedFolder = folder is null ? null : RealPath(folder);
            return resolvedFolder is null ? fullPath : Path.Combine(resolvedFolder, Path.GetFileName(fullPath));
        }

        public override void Write(ReadOnlySpan<byte> bytes)
        {
            fixed (byte* start = bytes)
            {
                var written = 0;
                while (written < bytes.Length)
                {
                    var count = write(_fd, start + written, bytes.Length - written);
                    if (count >= 0)
                    {
                        written += (int)count;
                        continue;
                    }

                    var errno = Marshal.GetLastWin32Error();
                    if (errno == EINTR)
                    {
                        continue;
                    }

                    if (written > 0)
                    {
                        DropTornTail(written); // the disk filled up within the batch: no half line stays behind
                    }

                    throw ErrorFor(errno, _path);
                }
            }
        }

        public override void Dispose()
        {
            if (_fd >= 0)
            {
                close(_fd); // releases the lock
                _fd = -1;
            }
        }

        private static void Lock(int fd, string path)
        {
            var request = new Flock { Type = F_WRLCK }; // the whole file, from 0 to any length
            int result;
            while ((result = fcntl(fd, F_OFD_SETLK, &request)) < 0 && Marshal.GetLastWin32Error() == EINTR)
            {
            }

            if (result < 0)
            {
                var errno = Marshal.GetLastWin32Error();
                if (errno == EAGAIN || errno == EACCES)
                {
                    throw new LogPathInUseException(path);
                }

                // No such locks here (an old kernel, a file system without them): as .NET's FileShare on
                // Unix, the lock is advisory and best effort, and the log is written unlocked.
            }
        }

        private static bool IsRegularFile(int fd)
        {
            var status = stackalloc byte[StatxSize];
            try
            {
                if (statx(fd, EmptyPath, AT_EMPTY_PATH, STATX_TYPE, status) < 0)
                {
                    return true;
                }
            }
            catch (EntryPointNotFoundException)
            {
                return true; // a libc without statx (glibc before 2.28): treat it as a file
            }

            return (*(ushort*)(status + StatxModeOffset) & S_IFMT) == S_IFREG;
        }

        /// <summary>After a short write that failed: cuts the file back to where the batch began.</summary>
        private void DropTornTail(int written)
        {
            var end = lseek(_fd, 0, 1 /* SEEK_CUR: the end, when appending */);
            if (end >= written)
            {
                ftruncate(_fd, end - written);
            }
        }

        private static string? RealPath(string path)
        {
            var resolved = realpath(CString(path), IntPtr.Zero);
            if (resolved == IntPtr.Zero)
            {
                return null;
            }

            try
            {
                var bytes = (byte*)resolved;
                var length = 0;
                while (bytes[length] != 0)
                {
                    length++;
                }

                return Encoding.UTF8.GetString(bytes, length);
            }
            finally
            {
                free(resolved);
            }
        }

        /// <summary>The path as C wants it (netstandard2.0 has no UTF-8 string marshalling).</summary>
        private static byte[] CString(string path)
        {
            var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
            Encoding.UTF8.GetBytes(path, 0, path.Length, bytes, 0);
            return bytes;
        }

        private static Exception ErrorFor(int errno, string path)
        {
            var reason = new Win32Exception(errno).Message;
            return errno switch
            {
                EACCES or EPERM or EISDIR or EROFS => new UnauthorizedAccessException($"Access to the path '{path}' is denied: {reason}."),
                ENOENT or ENOTDIR => new DirectoryNotFoundException($"Could not find a part of the path '{path}': {reason}."),
                _ => new IOException($"{reason}: '{path}'", errno),
            };
        }

        [StructLayout(LayoutKind.Sequential)]
        private struct Flock
        {
            public short Type;
            public short Whence;
            public long Start;
            public long Length;
            public int Pid;
        }

        [DllImport(Libc, SetLastError = true)]
        private static extern int open(byte[] path, int flags, int mode);

        [DllImport(Libc, SetLastError = true)]
        private static extern int fcntl(int fd, int cmd, Flock* request);

        [DllImport(Libc, SetLastError = true)]
        private static extern int statx(int dirfd, byte[] path, int flags, uint mask, byte* status);

        [DllImport(Libc, SetLastError = true)]
        private static extern int ftruncate(int fd, long length);

        [DllImport(Libc, SetLastError = true)]
        private static extern long lseek(int fd, long offset, int whence);

        [DllImport(Libc, SetLastError = true)]
        private static extern nint write(int fd, byte* buffer, nint count);

        [DllImport(Libc, SetLastError = true)]
        private static extern int close(int fd);

        [DllImport(Libc, SetLastError = true)]
        private static extern IntPtr realpath(byte[] path, IntPtr resolved);

        [DllImport(Libc)]
        private static extern void free(IntPtr pointer);
    }

    private sealed class StreamLogFile : LogFile
    {
        private const int SharingViolation = unchecked((int)0x80070020);
        private const int LockViolation = unchecked((int)0x80070021);

        private readonly FileStream _stream;
        private byte[] _copy = new byte[4096]; // netstandard2.0's FileStream writes arrays only

        private StreamLogFile(FileStream stream) => _stream = stream;

        public static LogFile OpenFile(string path, bool empty)
        {
            FileStream stream;
            try
            {
                // Unbuffered (bufferSize 1): each batch is one write already, a buffer would only copy it again.
                stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read | FileShare.Delete, bufferSize: 1);
            }
            catch (IOException e) when (OnWindows && (e.HResult == SharingViolation || e.HResult == LockViolation))
            {
                throw new LogPathInUseException(path, e);
            }

            try
            {
                if (empty)
                {
                    stream.SetLength(0);
                }

                stream.Seek(0, SeekOrigin.End);
                return new StreamLogFile(stream);
            }
            catch
            {
                stream.Dispose();
                throw;
            }
        }

        public override void Write(ReadOnlySpan<byte> bytes)
        {
            if (_copy.Length < bytes.Length)
            {
                _copy = new byte[Math.Max(bytes.Length, _copy.Length * 2)];
            }

            bytes.CopyTo(_copy);
            _stream.Write(_copy, 0, bytes.Length);
        }

        public override void Dispose() => _stream.Dispose();
    }
}
