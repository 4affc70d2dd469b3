using System.IO;
using System.Net;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Transport;

/// <summary>Opens outgoing connections as streams served where the caller is (an event loop): what the caller
/// then reads and writes completes on that loop's thread, with no hop to another thread.</summary>
internal interface IStreamConnector
{
    /// <summary>Connects to <paramref name="remote"/>; a failure is the <see cref="System.Net.Sockets.SocketException"/>
    /// of its errno, a cancel an <see cref="System.OperationCanceledException"/>.</summary>
    Task<Stream> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken);
}
