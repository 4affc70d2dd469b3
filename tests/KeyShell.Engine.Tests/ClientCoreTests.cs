using System.Net;
using KeyShell.Engine.Client;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>The client side of the connection core's fixes, on both client paths.</summary>
#if ENGINE_NETSTANDARD
// The netstandard2.0 build has no event loops: there these tests run once, as ClientCoreTestsOnTheAsyncPath.
public abstract class ClientCoreTests
#else
public class ClientCoreTests
#endif
{
    protected virtual bool UseEventLoops => true;

    [Theory]
    [InlineData(ConnectionMode.Persistent)]
    [InlineData(ConnectionMode.PerMessage)]
    public async Task AnObserverThatThrowsEndsTheRunWithItsException(ConnectionMode mode)
    {
        using var server = StartServer(o => o.LogPath = null);
        var options = new KeyClientOptions { Port = server.Port, Connection = mode, UseEventLoops = UseEventLoops };
        var sequences = new[] { "1 1 2 3", "2 4 5 6", "3 7 8 9" }.Select(ClientSequence.Parse).ToArray();
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => KeyClient.RunAsync(sequences, options, new ThrowingObserver()).WaitAsync(Bound));
        Assert.Equal("the observer's bug", thrown.Message);
    }

    [Fact]
    public async Task AProbeGivesUpWithinItsTimeoutEvenDuringTheNameLookup()
    {
        var lookUp = KeyClient.LookUp;
        KeyClient.LookUp = async (host, token) =>
        {
            if (host != "stalled.invalid")
            {
                return await lookUp(host, token);
            }

            await Task.Delay(Timeout.Infinite, token); // a resolver that never answers
            return Array.Empty<IPAddress>();
        };
        try
        {
            var probe = await KeyProbe.ProbeAsync("stalled.invalid", 8080, TimeSpan.FromMilliseconds(200), sendRequest: true, CancellationToken.None).WaitAsync(Bound);
            Assert.False(probe.Reachable);
            Assert.Equal("no answer within 0.2 s", probe.Error);
        }
        finally
        {
            KeyClient.LookUp = lookUp;
        }
    }

    [Fact]
    public async Task AProbeReportsAReplyTheServerClosedWithoutEnding()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var serve = Task.Run(async () =>
        {
            using var peer = await listener.AcceptSocketAsync();
            var request = new byte[64];
            _ = await peer.ReceiveAsync(request, System.Net.Sockets.SocketFlags.None);
            await peer.SendAsync(System.Text.Encoding.ASCII.GetBytes("Response without an end"), System.Net.Sockets.SocketFlags.None);
            peer.Shutdown(System.Net.Sockets.SocketShutdown.Both);
        });
        var probe = await KeyProbe.ProbeAsync("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port, Bound, sendRequest: true, CancellationToken.None).WaitAsync(Bound);
        await serve.WaitAsync(Bound);
        Assert.True(probe.Connected);
        Assert.False(probe.Reachable); // a reply cut off by a close is not the protocol's
        Assert.Equal("Response without an end", probe.Reply);
        Assert.Contains("before the reply's line end", probe.Error);
    }

    private sealed class ThrowingObserver : IKeyClientObserver
    {
        public bool WantsSendNotices => false;

        public void OnSending(string clientId, string key)
        {
        }

        public void OnReply(KeyReply reply) => throw new InvalidOperationException("the observer's bug");

        public void OnFailure(KeyClientFailure failure)
        {
        }
    }
}

public class ClientCoreTestsOnTheAsyncPath : ClientCoreTests
{
    protected override bool UseEventLoops => false;
}
