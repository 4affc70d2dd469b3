using System;
using System.Runtime.InteropServices;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>Level-triggered epoll, with an eventfd to wake the waiting thread.</summary>
internal sealed unsafe class EpollPoller : IPoller
{
    private const uint EPOLLIN = 0x001;
    private const uint EPOLLOUT = 0x004;
    private const uint EPOLLRDHUP = 0x2000;
    private const uint EPOLLEXCLUSIVE = 1u << 28;
    private const int EPOLL_CTL_ADD = 1;
    private const int EPOLL_CTL_DEL = 2;
    private const int EPOLL_CTL_MOD = 3;
    private const int EPOLL_CLOEXEC = 0x80000;
    private const int EFD_CLOEXEC = 0x80000;
    private const int EFD_NONBLOCK = 0x800;
    private const ulong WakeToken = ulong.MaxValue;

    /// <summary>One <c>struct epoll_event</c>: packed (12 bytes) on x86-64, naturally aligned (16) elsewhere.</summary>
    private static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly byte[] _raw;
    private readonly object _wakeGate = new();
    private bool _disposed;

    public EpollPoller(int maxEvents)
    {
        _raw = new byte[maxEvents * EventSize];
        _epoll = Libc.Check(Libc.OrErrno(epoll_create1(EPOLL_CLOEXEC)), "epoll_create1");
        try
        {
            _wake = Libc.Check(Libc.OrErrno(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), "eventfd");
            Control(EPOLL_CTL_ADD, _wake, EPOLLIN, WakeToken, "epoll_ctl(ADD)");
        }
        catch
        {
            Libc.Close(_epoll);
            throw;
        }
    }

    public void Add(int descriptor, Interest interest, ulong token) => Control(EPOLL_CTL_ADD, descriptor, Flags(interest), token, "epoll_ctl(ADD)");

    public void Change(int descriptor, Interest interest, ulong token) => Control(EPOLL_CTL_MOD, descriptor, Flags(interest), token, "epoll_ctl(MOD)");

    public void Remove(int descriptor)
    {
        var entry = stackalloc byte[16];
        _ = epoll_ctl(_epoll, EPOLL_CTL_DEL, descriptor, entry); // not registered (already closed) is fine
    }

    public int Wait(Span<ulong> tokens, int timeoutMs)
    {
        int count;
        fixed (byte* raw = _raw)
        {
            count = epoll_wait(_epoll, raw, Math.Min(tokens.Length, _raw.Length / EventSize), timeoutMs);
        }

        if (count < 0)
        {
            return -Marshal.GetLastPInvokeError();
        }

        var written = 0;
        for (var i = 0; i < count; i++)
        {
            var at = i * EventSize;
            var token = MemoryMarshal.Read<ulong>(_raw.AsSpan(at + EventSize - 8));
            if (token == WakeToken)
            {
                ulong value;
                _ = Libc.Read(_wake, &value, sizeof(ulong)); // clear the count, or level-triggered epoll reports it again
                continue;
            }

            tokens[written++] = token;
        }

        return written;
    }

    /// <summary>Any thread, even after the loop has ended: once disposed it does nothing, so a late wake
    /// can never write into a descriptor number that was closed and given to another socket.</summary>
    public void Wake()
    {
        lock (_wakeGate)
        {
            if (!_disposed)
            {
                ulong one = 1;
                _ = Libc.Write(_wake, &one, sizeof(ulong));
            }
        }
    }

    public void Dispose()
    {
        lock (_wakeGate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Libc.Close(_wake);
        }

        Libc.Close(_epoll);
    }

    // EPOLLEXCLUSIVE allows EPOLLIN and EPOLLOUT only (EINVAL with EPOLLRDHUP): a listener needs no more.
    private static uint Flags(Interest interest) =>
        (interest & Interest.Exclusive) != 0 ? EPOLLIN | EPOLLEXCLUSIVE
        : ((interest & Interest.Read) != 0 ? EPOLLIN | EPOLLRDHUP : 0)
        | ((interest & Interest.Write) != 0 ? EPOLLOUT : 0);

    private void Control(int operation, int descriptor, uint flags, ulong token, string call)
    {
        var entry = stackalloc byte[16];
        *(uint*)entry = flags;
        *(ulong*)(entry + EventSize - 8) = token;
        Libc.Check(epoll_ctl(_epoll, operation, descriptor, entry) == 0 ? 0 : -Marshal.GetLastPInvokeError(), call);
    }

    [DllImport(Libc.Name, SetLastError = true)]
    private static extern int epoll_create1(int flags);

    [DllImport(Libc.Name, SetLastError = true)]
    private static extern int epoll_ctl(int epfd, int op, int fd, byte* eventEntry);

    [DllImport(Libc.Name, SetLastError = true)]
    private static extern int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [DllImport(Libc.Name, SetLastError = true)]
    private static extern int eventfd(uint initval, int flags);
}
