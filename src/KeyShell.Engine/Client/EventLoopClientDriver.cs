using System;
using System.Net;
using KeyShell.Engine.Transport;
using KeyShell.Engine.Transport.Epoll;

namespace KeyShell.Engine.Client;

/// <summary>Client sessions on Linux event loops: spread over one loop per processor, round robin.</summary>
internal sealed class EventLoopClientDriver : ClientDriver
{
    private readonly EventLoop[] _loops;
    private int _next;

    public EventLoopClientDriver(int loops, string name, Action<Exception> onError)
    {
        _loops = new EventLoop[loops];
        try
        {
            for (var i = 0; i < loops; i++)
            {
                _loops[i] = new EventLoop($"{name} loop {i + 1}", onError);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public override bool UsesEventLoops => true;

    public override void Start(ISession session, IPEndPoint remote) => PolledConnection.Connect(_loops[_next++ % _loops.Length], session, remote);

    public override void Dispose()
    {
        foreach (var loop in _loops)
        {
            loop?.Dispose();
        }
    }
}
