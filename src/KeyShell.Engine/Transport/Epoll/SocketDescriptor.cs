using System.Net.Sockets;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>
/// A socket's descriptor that one loop thread uses and closes, while other threads may shut it down to
/// end it. The gate makes "still open? then shut down" and "close" one step each, so a shutdown never
/// reaches a number that was closed and perhaps given to a new socket meanwhile.
/// </summary>
internal sealed class SocketDescriptor
{
    private int _value; // changed under lock (this): the class is internal and sealed, nobody else locks it

    public SocketDescriptor(int value) => _value = value;

    /// <summary>The number, for calls on the loop's thread; -1 once closed.</summary>
    public int Value => _value;

    /// <summary>shutdown(2), if still open; any thread. The loop then sees the hang-up as an event.</summary>
    public void Shutdown(SocketShutdown how = SocketShutdown.Both)
    {
        lock (this)
        {
            if (_value >= 0)
            {
                Libc.Shutdown(_value, how);
            }
        }
    }

    /// <summary>Closes the descriptor once; later calls do nothing. <paramref name="reset"/> ends the
    /// connection with RST instead of an orderly end (what is unsent is discarded).</summary>
    public void Close(bool shutdownFirst, bool reset = false)
    {
        lock (this)
        {
            if (_value < 0)
            {
                return;
            }

            if (reset)
            {
                Libc.SetResetOnClose(_value);
            }
            else if (shutdownFirst)
            {
                Libc.Shutdown(_value, SocketShutdown.Both);
            }

            Libc.Close(_value);
            _value = -1;
        }
    }
}
