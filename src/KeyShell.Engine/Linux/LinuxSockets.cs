#if NET
using System;
using System.Net;
using System.Runtime.InteropServices;

namespace KeyShell.Engine.Linux;

/// <summary>
/// The few Linux calls the event loop makes: epoll, eventfd, and non-blocking recv/send on a socket's
/// descriptor. Errors come back as negative errno values, so callers never read a stale errno.
/// </summary>
internal static class LinuxSockets
{
    public const int EAGAIN = 11;
    public const int EINTR = 4;

    public const uint EPOLLIN = 0x001;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLEXCLUSIVE = 1u << 28;

    public const int EMFILE = 24;
    public const int ENFILE = 23;
    public const int ENOBUFS = 105;
    public const int ENOMEM = 12;

    private const int EPOLL_CTL_ADD = 1;
    private const int EPOLL_CTL_DEL = 2;
    private const int EPOLL_CTL_MOD = 3;
    private const int EPOLL_CLOEXEC = 0x80000;
    private const int EFD_CLOEXEC = 0x80000;
    private const int EFD_NONBLOCK = 0x800;
    private const int MSG_DONTWAIT = 0x40;
    private const int SOCK_CLOEXEC = 0x80000;
    private const int F_GETFL = 3;
    private const int F_SETFL = 4;
    private const int O_NONBLOCK = 0x800;
    private const int MSG_NOSIGNAL = 0x4000;
    private const int AF_INET = 2;
    private const int AF_INET6 = 10;
    private const int IPPROTO_TCP = 6;
    private const int TCP_NODELAY = 1;
    private const int SHUT_RDWR = 2;
    private const int SockaddrStorageSize = 128;
    private const int SOCK_STREAM = 1;
    private const int SOCK_NONBLOCK = 0x800;
    private const int SOL_SOCKET = 1;
    private const int SO_ERROR = 4;
    public const int EINPROGRESS = 115;
    public const int ECONNREFUSED = 111;
    public const int ECONNRESET = 104;
    public const int ECONNABORTED = 103;
    public const int EPIPE = 32;
    public const int ETIMEDOUT = 110;
    public const int EHOSTUNREACH = 113;
    public const int ENETUNREACH = 101;
    public const int EADDRNOTAVAIL = 99;

    private const string Libc = "libc";

    /// <summary>
    /// The size of one <c>struct epoll_event</c>: packed (12 bytes) on x86-64, naturally aligned (16) on
    /// the other 64-bit ABIs. The event loop runs only where this is known.
    /// </summary>
    public static int EventSize { get; } = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    /// <summary>True where the event loop can run: Linux on x86-64 or Arm64 with a loadable libc.</summary>
    public static bool IsSupported { get; } = Probe();

    public static int CreateEpoll() => Check(OrErrno(epoll_create1(EPOLL_CLOEXEC)), "epoll_create1");

    public static int CreateEventFd() => Check(OrErrno(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), "eventfd");

    public static void Add(int epoll, int fd, uint events, ulong data) => Check(Control(epoll, EPOLL_CTL_ADD, fd, events, data), "epoll_ctl(ADD)");

    public static void Modify(int epoll, int fd, uint events, ulong data) => Check(Control(epoll, EPOLL_CTL_MOD, fd, events, data), "epoll_ctl(MOD)");

    /// <summary>Removes a descriptor; a negative errno when it was not registered (already closed).</summary>
    public static int Remove(int epoll, int fd) => Control(epoll, EPOLL_CTL_DEL, fd, 0, 0);

    /// <summary>Waits for events into <paramref name="events"/>; returns their count or a negative errno.</summary>
    public static unsafe int Wait(int epoll, Span<byte> events, int timeoutMs)
    {
        fixed (byte* buffer = events)
        {
            var count = epoll_wait(epoll, buffer, events.Length / EventSize, timeoutMs);
            return count >= 0 ? count : -Marshal.GetLastPInvokeError();
        }
    }

    public static uint EventFlags(ReadOnlySpan<byte> events, int index) =>
        MemoryMarshal.Read<uint>(events.Slice(index * EventSize));

    public static ulong EventData(ReadOnlySpan<byte> events, int index) =>
        MemoryMarshal.Read<ulong>(events.Slice((index * EventSize) + (EventSize - 8)));

    /// <summary>Reads without waiting: the byte count, 0 at end of stream, or a negative errno.</summary>
    public static unsafe int Receive(int fd, Span<byte> buffer)
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
    public static unsafe int Send(int fd, ReadOnlySpan<byte> buffer)
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

    /// <summary>
    /// Accepts one pending connection: its descriptor, or a negative errno (EAGAIN when none waits). The
    /// peer's address comes with it, so the connection needs no getpeername call (or .NET Socket, whose
    /// constructor makes eight calls to learn what the loop already knows).
    /// </summary>
    public static unsafe int Accept(int listener, out IPEndPoint? peer)
    {
        var address = stackalloc byte[SockaddrStorageSize];
        int length, fd;
        do
        {
            length = SockaddrStorageSize;
            fd = OrErrno(accept4(listener, address, &length, SOCK_CLOEXEC));
        }
        while (fd == -EINTR);

        peer = fd >= 0 ? ToEndPoint(new ReadOnlySpan<byte>(address, Math.Min(length, SockaddrStorageSize))) : null;
        return fd;
    }

    /// <summary>Replies go out as soon as they are written (no Nagle delay).</summary>
    public static unsafe void SetNoDelay(int fd)
    {
        var one = 1;
        _ = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int));
    }

    /// <summary>shutdown(SHUT_RDWR): the peer sees the end, and so does the loop watching the socket.</summary>
    public static void Shutdown(int fd) => _ = shutdown(fd, SHUT_RDWR);

    /// <summary>
    /// Starts a non-blocking connect to <paramref name="endPoint"/>: 0 when connected at once, EINPROGRESS
    /// (negated) while the handshake runs (the socket turns writable when it ends: <see cref="PendingError"/>),
    /// or another negated errno, with no descriptor left open.
    /// </summary>
    public static unsafe int Connect(IPEndPoint endPoint, out int fd)
    {
        var family = endPoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET;
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
    public static unsafe int PendingError(int fd)
    {
        int error = 0, length = sizeof(int);
        var result = OrErrno(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length));
        return result < 0 ? result : -error;
    }

    /// <summary>An errno as the SocketException .NET itself would throw for it.</summary>
    public static System.Net.Sockets.SocketException ToException(int errno) => new((int)(errno switch
    {
        ECONNREFUSED => System.Net.Sockets.SocketError.ConnectionRefused,
        ECONNRESET => System.Net.Sockets.SocketError.ConnectionReset,
        ECONNABORTED => System.Net.Sockets.SocketError.ConnectionAborted,
        EPIPE => System.Net.Sockets.SocketError.Shutdown,
        ETIMEDOUT => System.Net.Sockets.SocketError.TimedOut,
        EHOSTUNREACH => System.Net.Sockets.SocketError.HostUnreachable,
        ENETUNREACH => System.Net.Sockets.SocketError.NetworkUnreachable,
        EADDRNOTAVAIL => System.Net.Sockets.SocketError.AddressNotAvailable,
        EMFILE or ENFILE => System.Net.Sockets.SocketError.TooManyOpenSockets,
        ENOBUFS or ENOMEM => System.Net.Sockets.SocketError.NoBufferSpaceAvailable,
        _ => System.Net.Sockets.SocketError.SocketError,
    }));

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

    /// <summary>Makes accept(2) on <paramref name="fd"/> return EAGAIN instead of waiting.</summary>
    public static void SetNonBlocking(int fd)
    {
        var flags = Check(OrErrno(fcntl(fd, F_GETFL, 0)), "fcntl(F_GETFL)");
        Check(OrErrno(fcntl(fd, F_SETFL, flags | O_NONBLOCK)), "fcntl(F_SETFL)");
    }

    /// <summary>Wakes a loop blocked in epoll_wait on this eventfd.</summary>
    public static unsafe void Signal(int eventFd)
    {
        ulong one = 1;
        _ = write(eventFd, &one, sizeof(ulong));
    }

    /// <summary>Clears an eventfd's count so level-triggered epoll stops reporting it.</summary>
    public static unsafe void Drain(int eventFd)
    {
        ulong count;
        _ = read(eventFd, &count, sizeof(ulong));
    }

    public static void Close(int fd) => _ = close(fd);

    private static unsafe int Control(int epoll, int operation, int fd, uint events, ulong data)
    {
        var entry = stackalloc byte[16];
        *(uint*)entry = events;
        *(ulong*)(entry + EventSize - 8) = data;
        return epoll_ctl(epoll, operation, fd, entry) == 0 ? 0 : -Marshal.GetLastPInvokeError();
    }

    private static int Check(int result, string call) =>
        result >= 0 ? result : throw new System.Net.Sockets.SocketException(Math.Abs(result), $"{call} failed with errno {Math.Abs(result)}.");

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            return false;
        }

        // "libc" alone resolves only where the development symlink libc.so exists; the runtime library
        // is libc.so.6 on glibc (musl systems have a plain libc.so). Registered before the first call.
        NativeLibrary.SetDllImportResolver(typeof(LinuxSockets).Assembly, static (name, _, _) =>
            name == Libc && (NativeLibrary.TryLoad("libc.so.6", out var handle) || NativeLibrary.TryLoad("libc.so", out handle))
                ? handle
                : IntPtr.Zero);
        try
        {
            Close(CreateEpoll());
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException || e is System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    private static int OrErrno(int result) => result >= 0 ? result : -Marshal.GetLastPInvokeError();

    [DllImport(Libc, SetLastError = true)]
    private static extern int epoll_create1(int flags);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe int epoll_ctl(int epfd, int op, int fd, byte* eventEntry);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe int accept4(int sockfd, byte* addr, int* addrlen, int flags);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe int setsockopt(int sockfd, int level, int optname, void* optval, int optlen);

    [DllImport(Libc, SetLastError = true)]
    private static extern int shutdown(int sockfd, int how);

    [DllImport(Libc, SetLastError = true)]
    private static extern int socket(int domain, int type, int protocol);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe int connect(int sockfd, byte* addr, int addrlen);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe int getsockopt(int sockfd, int level, int optname, void* optval, int* optlen);

    [DllImport(Libc, SetLastError = true)]
    private static extern int fcntl(int fd, int cmd, int arg);

    [DllImport(Libc, SetLastError = true)]
    private static extern int eventfd(uint initval, int flags);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe nint recv(int sockfd, byte* buf, nint len, int flags);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe nint send(int sockfd, byte* buf, nint len, int flags);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe nint read(int fd, void* buf, nint count);

    [DllImport(Libc, SetLastError = true)]
    private static extern unsafe nint write(int fd, void* buf, nint count);

    [DllImport(Libc, SetLastError = true)]
    private static extern int close(int fd);
}
#endif
