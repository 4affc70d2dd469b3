#if NET
using System.Threading;

namespace KeyShell.Engine.Linux;

/// <summary>
/// A socket's descriptor that one loop thread uses and closes, while other threads may shut it down to
/// end it. The gate makes "still open? then shut down" and "close" one step each, so a shutdown never
/// reaches a number that was closed and perhaps given to a new socket meanwhile.
/// </summary>
internal sealed class SocketDescriptor
{
    private readonly object _gate = new();
    private int _value;

    public SocketDescriptor(int value) => _value = value;

    /// <summary>The number, for calls on the loop's thread; -1 once closed or handed over.</summary>
    public int Value => Volatile.Read(ref _value);

    /// <summary>shutdown(2), if still open; any thread. The loop then sees the hang-up as an event.</summary>
    public void Shutdown()
    {
        lock (_gate)
        {
            if (_value >= 0)
            {
                LinuxSockets.Shutdown(_value);
            }
        }
    }

    /// <summary>Closes the descriptor once; later calls do nothing.</summary>
    public void Close(bool shutdownFirst = false)
    {
        lock (_gate)
        {
            if (_value < 0)
            {
                return;
            }

            if (shutdownFirst)
            {
                LinuxSockets.Shutdown(_value);
            }

            LinuxSockets.Close(_value);
            _value = -1;
        }
    }

    /// <summary>Gives the descriptor to a new owner (a .NET Socket), which closes it from now on.</summary>
    public void HandOver()
    {
        lock (_gate)
        {
            _value = -1;
        }
    }
}
#endif
