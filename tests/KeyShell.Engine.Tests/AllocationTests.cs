using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using KeyShell.Engine.Security;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

[CollectionDefinition(nameof(AllocationTests), DisableParallelization = true)]
public sealed class AllocationCollection
{
}

/// <summary>
/// The server allocates nothing per request when the log is off, in plain text and with TLS. Measured as bytes allocated
/// by the whole process (GC.GetTotalAllocatedBytes) across 100,000 requests; the test runs alone (its
/// collection is not parallel) and its client makes blocking calls with fixed buffers on its own threads (with TLS,
/// an SslStream over each socket, its allocations counted on those threads and taken off).
/// </summary>
[Collection(nameof(AllocationTests))]
public class AllocationTests
{
    private const int Connections = 8;
    private const int RequestsPerConnection = 12_500;

    [SkippableTheory]
    [InlineData(1, false)]
    [InlineData(16, false)]
    [InlineData(1, true)]
    public void TheServerAllocatesNothingPerRequestWithTheLogOff(int pipeline, bool tls)
    {
#if ENGINE_NETSTANDARD
        Skip.If(true, "a promise of the net8.0 engine (ValueTask socket calls); the netstandard2.0 build's Task-based calls allocate by design");
#endif
        using var server = StartServer(o =>
        {
            o.LogPath = null;
            if (tls)
            {
                o.Certificate = new ServerCertificate(TestCertificates.Shared.Server);
            }
        });
        var sockets = Enumerable.Range(0, Connections).Select(_ => Open(Connect(server.Port), tls)).ToArray();
        try
        {
            Drive(sockets, 200, pipeline); // warm up: JIT, pools, socket contexts
            var before = GC.GetTotalAllocatedBytes(precise: true);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            Drive(sockets, RequestsPerConnection, pipeline);
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - before - _clientAllocated;
            var elapsed = watch.Elapsed;

            // The test host allocates on its own (timers, its message bus): measure that over as long a
            // quiet spell, with the same server and connections open, and take it off.
            var idleBefore = GC.GetTotalAllocatedBytes(precise: true);
            Thread.Sleep(elapsed);
            var background = GC.GetTotalAllocatedBytes(precise: true) - idleBefore;
            allocated -= background;
            var perRequest = (double)allocated / (Connections * RequestsPerConnection);

            // The smallest heap object is 24 bytes, so one allocation per request anywhere (ours or the runtime's)
            // would show as 24 or more. What remains (about 6-9 bytes a request, measured) is the runtime's socket
            // completion path allocating now and then, when a receive pends; a per-thread count around the
            // server's own request code measured 0 bytes.
            Assert.True(perRequest < 16, $"background {background} bytes; {allocated} bytes allocated over {Connections * RequestsPerConnection} requests ({perRequest:0.###} per request)");
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    private static long _clientAllocated;

    private static Stream Open(Socket socket, bool tls)
    {
        var stream = new NetworkStream(socket, ownsSocket: true);
        if (!tls)
        {
            return stream;
        }

        var secure = new SslStream(stream, leaveInnerStreamOpen: false, (_, _, _, _) => true);
        secure.AuthenticateAsClient("localhost");
        return secure;
    }

    private static void Drive(Stream[] sockets, int requests, int pipeline)
    {
        _clientAllocated = 0;
        var threads = sockets.Select((socket, index) => new Thread(() =>
        {
            var batch = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, pipeline).Select(i => $"c{index} {(index + i) % 10}\n")));
            var buffer = new byte[64 * 1024];
            var start = GC.GetAllocatedBytesForCurrentThread();
            for (var sent = 0; sent < requests; sent += pipeline)
            {
                socket.Write(batch);
                var replies = 0;
                while (replies < pipeline)
                {
                    var count = socket.Read(buffer);
                    if (count == 0)
                    {
                        throw new InvalidOperationException("The server closed the connection.");
                    }

                    for (var i = 0; i < count; i++)
                    {
                        replies += buffer[i] == (byte)'\n' ? 1 : 0;
                    }
                }
            }

            Interlocked.Add(ref _clientAllocated, GC.GetAllocatedBytesForCurrentThread() - start);
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => Assert.True(t.Join(Bound)));
    }
}
