using System;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>
/// The socket calls the event loops make on raw descriptors. Results are counts or negative errno
/// values, so callers never read a stale errno; <see cref="ToException"/> turns an errno into the
/// SocketException .NET itself would throw for it.
/// </summary>
internal static unsafe class Libc
{
    public const string Name = "libc";

    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ENOBUFS = 105;
    public const int EINPROGRESS = 115;
    public const int ECANCELED = 125;

    private const int AF_INET = 2;
    private const int AF_INET6 = 10;
    private const int SOCK_STREAM = 1;
    private const int SOCK_NONBLOCK = 0x800;
    private const int SOCK_CLOEXEC = 0x80000;
    private const int MSG_DONTWAIT = 0x40;
    private const int MSG_NOSIGNAL = 0x4000;
    private const int SOL_SOCKET = 1;
    private const int SO_ERROR = 4;
    private const int SO_LINGER = 13;
    private const int IPPROTO_TCP = 6;
    private const int TCP_NODELAY = 1;
    private const int F_GETFL = 3;
    private const int POLLOUT = 4;
    private const int F_SETFL = 4;
    private const int O_NONBLOCK = 0x800;
    private const int SockaddrSize = 128;

    /// <summary>True where the event loops run: Linux on x86-64 or Arm64, with a loadable libc and epoll.</summary>
    public static bool IsSupported { get; } = Probe();

    /// <summary>Reads without waiting: the byte count, 0 at the end of the stream, or a negative errno.</summary>
    public static int Receive(int fd, Span<byte> buffer)
    {
        fixed (byte* bytes = buffer)
        {
            nint count;
            do
            {
                count = recv(fd, bytes, buffer.Length, MSG_DONTWAIT);
            }
            while (count < 0 && Marshal.GetLastPInvokeError() == EINTR);

            return count >= 0 ? (int)count : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Writes without waiting (and without SIGPIPE): the byte count taken, or a negative errno.</summary>
    public static int Send(int fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* bytes = buffer)
        {
            nint count;
            do
            {
                count = send(fd, bytes, buffer.Length, MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            while (count < 0 && Marshal.GetLastPInvokeError() == EINTR);

            return count >= 0 ? (int)count : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Sends until done or the socket is full: the bytes taken, or a negative errno.</summary>
    public static int SendUntilFull(int descriptor, ReadOnlySpan<byte> bytes)
    {
        var total = 0;
        while (total < bytes.Length)
        {
            var sent = Send(descriptor, bytes.Slice(total));
            if (sent == -EAGAIN)
            {
                break;
            }

            if (sent < 0)
            {
                return sent;
            }

            total += sent;
        }

        return total;
    }

    /// <summary>Accepts one pending connection: its descriptor and the peer's address, or a negative errno
    /// (EAGAIN when none waits). No .NET Socket is made: its constructor costs eight system calls.</summary>
    public static int Accept(int listener, out IPEndPoint? peer)
    {
        var address = stackalloc byte[SockaddrSize];
        int length, fd;
        do
        {
            length = SockaddrSize;
            fd = OrErrno(accept4(listener, address, &length, SOCK_CLOEXEC));
        }
        while (fd == -EINTR);

        peer = fd >= 0 ? ToEndPoint(new ReadOnlySpan<byte>(address, Math.Min(length, SockaddrSize))) : null;
        return fd;
    }

    /// <summary>Starts a non-blocking connect: 0 when connected at once, -EINPROGRESS while the handshake
    /// runs (the socket turns writable when it ends: <see cref="PendingError"/>), or another negative errno
    /// with no descriptor left open.</summary>
    public static int Connect(IPEndPoint endPoint, out int fd)
    {
        var family = endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET;
        fd = OrErrno(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (fd < 0)
        {
            var error = fd;
            fd = -1;
            return error;
        }

        SetNoDelay(fd);
        var address = stackalloc byte[28];
        new Span<byte>(address, 28).Clear();
        address[0] = (byte)family; // sa_family_t, host order (little-endian)
        address[2] = (byte)(endPoint.Port >> 8);
        address[3] = (byte)endPoint.Port;
        int length;
        if (family == AF_INET)
        {
            endPoint.Address.TryWriteBytes(new Span<byte>(address + 4, 4), out _);
            length = 16;
        }
        else
        {
            endPoint.Address.TryWriteBytes(new Span<byte>(address + 8, 16), out _);
            *(uint*)(address + 24) = (uint)endPoint.Address.ScopeId;
            length = 28;
        }

        int result;
        do
        {
            result = OrErrno(connect(fd, address, length));
        }
        while (result == -EINTR);

        if (result < 0 && result != -EINPROGRESS)
        {
            Close(fd);
            fd = -1;
        }

        return result;
    }

    /// <summary>SO_ERROR: 0 once a pending connect succeeded, else its errno (negated).</summary>
    public static int PendingError(int fd)
    {
        int error = 0, length = sizeof(int);
        var result = OrErrno(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length));
        return result < 0 ? result : -error;
    }

    /// <summary>Replies go out as soon as they are written (no Nagle delay). Linux copies it from a
    /// listener to every connection it accepts.</summary>
    public static void SetNoDelay(int fd)
    {
        var one = 1;
        _ = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int));
    }

    /// <summary>Makes accept(2) on <paramref name="fd"/> return EAGAIN instead of waiting.</summary>
    public static void SetNonBlocking(int fd)
    {
        var flags = Check(OrErrno(fcntl(fd, F_GETFL, 0)), "fcntl(F_GETFL)");
        Check(OrErrno(fcntl(fd, F_SETFL, flags | O_NONBLOCK)), "fcntl(F_SETFL)");
    }

    public static void Shutdown(int fd, SocketShutdown how) => _ = shutdown(fd, (int)how);

    /// <summary>Makes the next close(2) of <paramref name="fd"/> a reset (RST): SO_LINGER on, with no time to linger.</summary>
    public static void SetResetOnClose(int fd)
    {
        var linger = stackalloc int[2] { 1, 0 }; // struct linger { l_onoff, l_linger }
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, linger, 2 * sizeof(int));
    }

    public static void Close(int fd) => _ = close(fd);

    /// <summary>Waits up to <paramref name="milliseconds"/> for <paramref name="fd"/> to be writable (a pending
    /// connect has ended, one way or the other): 1 when it is, 0 on the timeout, or a negative errno.</summary>
    public static int WaitWritable(int fd, int milliseconds)
    {
        var entry = stackalloc int[2] { fd, POLLOUT }; // struct pollfd { int fd; short events; short revents; }
        return OrErrno(poll(entry, 1, milliseconds));
    }

    public static nint Read(int fd, void* buffer, nint count) => read(fd, buffer, count);

    public static nint Write(int fd, void* buffer, nint count) => write(fd, buffer, count);

    public static int OrErrno(int result) => result >= 0 ? result : -Marshal.GetLastPInvokeError();

    /// <summary>Returns a non-negative result; throws the SocketException of a negative errno.</summary>
    public static int Check(int result, string call) => result >= 0 ? result : throw ToException(-result, call);

    /// <summary>An errno as the SocketException .NET would throw for it, with its SocketError (not the raw errno).</summary>
    public static SocketException ToException(int errno, string? call = null)
    {
        var error = ToSocketError(errno);
        return call is null
            ? new SocketException((int)error)
            : new SocketException((int)error, $"{call} failed: {error} (errno {errno}).");
    }

    public static SocketError ToSocketError(int errno) => errno switch
    {
        EAGAIN => SocketError.WouldBlock,
        EINTR => SocketError.Interrupted,
        9 => SocketError.OperationAborted,     // EBADF: the socket was closed
        13 => SocketError.AccessDenied,        // EACCES
        22 => SocketError.InvalidArgument,     // EINVAL
        EMFILE or ENFILE => SocketError.TooManyOpenSockets,
        ENOBUFS or ENOMEM => SocketError.NoBufferSpaceAvailable,
        32 => SocketError.Shutdown,            // EPIPE
        88 => SocketError.NotSocket,           // ENOTSOCK
        98 => SocketError.AddressAlreadyInUse, // EADDRINUSE
        99 => SocketError.AddressNotAvailable, // EADDRNOTAVAIL
        100 => SocketError.NetworkDown,        // ENETDOWN
        101 => SocketError.NetworkUnreachable, // ENETUNREACH
        103 => SocketError.ConnectionAborted,  // ECONNABORTED
        104 => SocketError.ConnectionReset,    // ECONNRESET
        107 => SocketError.NotConnected,       // ENOTCONN
        110 => SocketError.TimedOut,           // ETIMEDOUT
        111 => SocketError.ConnectionRefused,  // ECONNREFUSED
        112 => SocketError.HostDown,           // EHOSTDOWN
        113 => SocketError.HostUnreachable,    // EHOSTUNREACH
        EINPROGRESS => SocketError.InProgress,
        _ => SocketError.SocketError,
    };

    /// <summary>Reads a sockaddr_in or sockaddr_in6 (ports and addresses in network order).</summary>
    internal static IPEndPoint? ToEndPoint(ReadOnlySpan<byte> address)
    {
        if (address.Length < 2)
        {
            return null;
        }

        var family = address[0] | (address[1] << 8); // sa_family_t is host order: little-endian here
        var port = address.Length >= 4 ? (address[2] << 8) | address[3] : 0;
        if (family == AF_INET && address.Length >= 8)
        {
            return new IPEndPoint(new IPAddress(address.Slice(4, 4)), port);
        }

        if (family == AF_INET6 && address.Length >= 28)
        {
            var scope = BitConverter.ToUInt32(address.Slice(24, 4));
            return new IPEndPoint(new IPAddress(address.Slice(8, 16), scope), port);
        }

        return null;
    }

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            return false;
        }

        // "libc" alone resolves only where the development symlink libc.so exists; the runtime library
        // is libc.so.6 on glibc (musl systems have a plain libc.so). Registered before the first call.
        NativeLibrary.SetDllImportResolver(typeof(Libc).Assembly, static (name, _, _) =>
            name == Name && (NativeLibrary.TryLoad("libc.so.6", out var handle) || NativeLibrary.TryLoad("libc.so", out handle))
                ? handle
                : IntPtr.Zero);
        try
        {
            new EpollPoller(1).Dispose();
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException || e is SocketException)
        {
            return false;
        }
    }

    [DllImport(Name, SetLastError = true)]
    private static extern int accept4(int sockfd, byte* addr, int* addrlen, int flags);

    [DllImport(Name, SetLastError = true)]
    private static extern int setsockopt(int sockfd, int level, int optname, void* optval, int optlen);

    [DllImport(Name, SetLastError = true)]
    private static extern int getsockopt(int sockfd, int level, int optname, void* optval, int* optlen);

    [DllImport(Name, SetLastError = true)]
    private static extern int shutdown(int sockfd, int how);

    [DllImport(Name, SetLastError = true)]
    private static extern int socket(int domain, int type, int protocol);

    [DllImport(Name, SetLastError = true)]
    private static extern int connect(int sockfd, byte* addr, int addrlen);

    [DllImport(Name, SetLastError = true)]
    private static extern int fcntl(int fd, int cmd, int arg);

    [DllImport(Name, SetLastError = true)]
    private static extern nint recv(int sockfd, byte* buf, nint len, int flags);

    [DllImport(Name, SetLastError = true)]
    private static extern nint send(int sockfd, byte* buf, nint len, int flags);

    [DllImport(Name, SetLastError = true)]
    private static extern nint read(int fd, void* buf, nint count);

    [DllImport(Name, SetLastError = true)]
    private static extern nint write(int fd, void* buf, nint count);

    [DllImport(Name, SetLastError = true)]
    private static extern int close(int fd);

    [DllImport(Name, SetLastError = true)]
    private static extern int poll(void* fds, nuint nfds, int timeout);
}
