using System;
using System.IO;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Security;
using KeyShell.Engine.Transport;
using KeyShell.Engine.Transport.Stream;

namespace KeyShell.Engine.Client;

/// <summary>
/// Runs client sessions (sequences, load workers) on the platform's driver: Linux event loops where they
/// run, async streams elsewhere and for TLS. A session's own task says when it has ended.
/// </summary>
internal abstract class ClientDriver : IDisposable
{
    /// <summary>A driver for <paramref name="sessions"/> sessions; <paramref name="onError"/> hears of
    /// failures no session owns (an event loop's own). With <paramref name="tls"/>, every connection shakes
    /// hands first, on the stream driver (TLS is SslStream's).</summary>
    public static ClientDriver Create(bool useEventLoops, int sessions, string name, Action<Exception> onError, TlsClientSettings? tls, string targetHost)
    {
        Func<Stream, Task<Stream>>? secure = tls is null ? null : async stream => await TlsHandshake.AuthenticateAsClientAsync(stream, tls, targetHost, CancellationToken.None).ConfigureAwait(false);
#if NET
        if (useEventLoops && secure is null && Transport.Epoll.Libc.IsSupported)
        {
            return new EventLoopClientDriver(Math.Max(1, Math.Min(Math.Min(16, Environment.ProcessorCount), sessions)), name, onError);
        }
#endif
        return new StreamClientDriver(secure);
    }

    public abstract bool UsesEventLoops { get; }

    public abstract void Start(ISession session, IPEndPoint remote);

    public virtual void Dispose()
    {
    }

    private sealed class StreamClientDriver : ClientDriver
    {
        private readonly Func<Stream, Task<Stream>>? _secure;

        public StreamClientDriver(Func<Stream, Task<Stream>>? secure) => _secure = secure;

        public override bool UsesEventLoops => false;

        public override void Start(ISession session, IPEndPoint remote) => _ = StreamConnection.Connect(session, remote, _secure); // never faults
    }
}
