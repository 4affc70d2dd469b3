using System;
using System.Net;
using KeyShell.Engine.Transport;
using KeyShell.Engine.Transport.Epoll;

namespace KeyShell.Engine.Client;

/// <summary>Connections on Linux event loops: spread over one loop per processor, round robin; plain text only.</summary>
internal sealed class EventLoopTransport : ClientTransport
{
    private readonly EventLoop[] _loops;

    public EventLoopTransport(int loops, string name, Action<Exception> onError)
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

    public override IConnection Dial(int slot, IPEndPoint remote, ISession session, IDialOwner owner) =>
        PolledDial.Start(_loops[(uint)slot % _loops.Length], remote, session, owner);

    public override void Dispose()
    {
        foreach (var loop in _loops)
        {
            loop?.Dispose();
        }
    }
}
