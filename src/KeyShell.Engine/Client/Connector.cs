using System;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Security;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Client;

/// <summary>
/// Opens, and reopens, the connections of client sessions (a client's sequences, a load generator's
/// workers), for every client role and on every transport: Linux event loops where they run and for plain
/// text, async streams elsewhere and for TLS. A session that ends a connection with Reconnect gets a new
/// one at once, with ReconnectSoon a moment later; any other end closes the session.
/// </summary>
internal sealed class Connector : IDisposable
{
    private static readonly TimeSpan ReconnectPause = TimeSpan.FromMilliseconds(10);

    private readonly ClientTransport _transport;
    private readonly IPEndPoint _remote;
    private int _links;

    private Connector(ClientTransport transport, IPEndPoint remote)
    {
        _transport = transport;
        _remote = remote;
    }

    public bool UsesEventLoops => _transport.UsesEventLoops;

    /// <summary>A connector to <paramref name="remote"/> for <paramref name="sessions"/> sessions; <paramref name="onError"/>
    /// hears of failures no session owns (an event loop's own). With <paramref name="tls"/> every connection shakes
    /// hands first, on the stream driver (TLS is SslStream's).</summary>
    public static Connector Create(IPEndPoint remote, bool useEventLoops, int sessions, string name, Action<Exception> onError, TlsClientSettings? tls, string targetHost)
    {
        var loops = Math.Max(1, Math.Min(Math.Min(16, Environment.ProcessorCount), sessions));
        var transport = (useEventLoops && tls is null ? TransportPlatform.CreateEventLoopTransport(loops, name, onError) : null)
            ?? new StreamTransport(tls, targetHost);
        return new Connector(transport, remote);
    }

    /// <summary>The link that will carry <paramref name="session"/>'s connections (<see cref="Link.Start"/> opens
    /// the first); it ends them from any thread.</summary>
    public Link CreateLink(ISession session) => new(this, session, Interlocked.Increment(ref _links));

    public void Dispose() => _transport.Dispose();

    /// <summary>One session's successive connections.</summary>
    internal sealed class Link : ILink
    {
        private readonly Connector _connector;
        private readonly ISession _session;
        private readonly int _slot;
        private Attempt? _current;
        private int _abortPending;

        public Link(Connector connector, ISession session, int slot)
        {
            _connector = connector;
            _session = session;
            _slot = slot;
        }

        /// <summary>Ends the connection (or the connect) under way from any thread: the session hears Failed. An
        /// abort that comes between two connections ends the next one as it starts; one that meets a connection
        /// as it ends is spent with it.</summary>
        public void Abort()
        {
            Interlocked.Exchange(ref _abortPending, 1);
            Volatile.Read(ref _current)?.Abort();
        }

        /// <summary>Opens the session's first connection.</summary>
        public void Start() => Dial();

        private void Dial()
        {
            var attempt = new Attempt(this);
            Interlocked.Exchange(ref _current, attempt);
            if (Interlocked.Exchange(ref _abortPending, 0) == 1)
            {
                attempt.Abort();
            }

            try
            {
                attempt.Dialing(_connector._transport.Dial(_slot, _connector._remote, _session, attempt));
            }
            catch (Exception e)
            {
                attempt.DialFailed(e); // no socket to be had (out of descriptors)
            }
        }

        private void Ended(Attempt attempt, Step last)
        {
            Interlocked.CompareExchange(ref _current, null, attempt);
            Interlocked.Exchange(ref _abortPending, 0); // the abort, if any, ended this connection
            switch (last)
            {
                case Step.Reconnect:
                    Dial();
                    break;
                case Step.ReconnectSoon:
                    _ = Task.Delay(ReconnectPause).ContinueWith(static (_, link) => ((Link)link!).Dial(), this, TaskScheduler.Default);
                    break;
                default:
                    _session.Closed();
                    break;
            }
        }

        /// <summary>One connection, from its connect to its end: what an abort reaches meanwhile.</summary>
        private sealed class Attempt : IDialOwner
        {
            private readonly Link _link;
            private IConnection? _dialing;
            private IConnection? _running;
            private int _aborted;
            private int _over;

            public Attempt(Link link) => _link = link;

            public void Abort()
            {
                Interlocked.Exchange(ref _aborted, 1);
                (Volatile.Read(ref _running) ?? Volatile.Read(ref _dialing))?.Abort();
            }

            public void Dialing(IConnection dialing) => Set(ref _dialing, dialing);

            public void Connected(IConnection connection) => Set(ref _running, connection);

            public void DialFailed(Exception error)
            {
                Step next;
                try
                {
                    next = _link._session.Failed(new ConnectFailedException(error));
                }
                catch (Exception)
                {
                    next = Step.Close;
                }

                ConnectionEnded(next);
            }

            public void ConnectionEnded(Step last)
            {
                if (Interlocked.Exchange(ref _over, 1) == 0)
                {
                    _link.Ended(this, last);
                }
            }

            // A full fence each side: an abort sees the connection, or the connection sees the abort.
            private void Set(ref IConnection? field, IConnection connection)
            {
                Interlocked.Exchange(ref field, connection);
                if (Volatile.Read(ref _aborted) == 1)
                {
                    connection.Abort();
                }
            }
        }
    }
}
