using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>The meters KeyShell.Server and KeyShell.Client agree with the server's and the client's own counts.</summary>
public class MetricsTests
{
    protected virtual bool UseEventLoops => true;

    [Fact]
    public void TheServerMeterAgreesWithTheServerCounters()
    {
        using var server = StartServer(o => { o.MaxConnections = 2; o.UseEventLoops = UseEventLoops; o.LogPath = null; });
        using var meter = new MeterCollector("KeyShell.Server", server.Port);
        var port = ("server.port", (object)server.Port);
        using (var a = Connect(server.Port))
        using (var b = Connect(server.Port))
        {
            // a: three requests in one write, one of them a bad key; b: a malformed one, then a good one.
            Send(a, "1 1\n1 2\n1 x\n");
            Assert.Equal(3, ReadLines(a, 3).Length);
            Send(b, "garbage\n");
            Assert.Single(ReadLines(b, 1));
            Send(b, "2 7\n");
            Assert.Single(ReadLines(b, 1));
            Eventually(() => server.ActiveConnections == 2, "two open connections");
            Assert.Equal(2, meter.Observe("keyshell.active_connections"));
            using var c = Connect(server.Port);
            Assert.Equal("Error: server busy\n", ReadToEnd(c)); // over the limit of two
        }

        Eventually(() => server.ActiveConnections == 0, "both connections closed");
        Assert.Equal(2, meter.Count("keyshell.connection.duration")); // a connection leaves the table after its meters

        Assert.Equal(2, server.Connections);
        Assert.Equal(5, server.Requests);
        Assert.Equal(2, server.Errors);
        Assert.Equal(1, server.Rejected);
        Assert.Equal(server.Connections, meter.Sum("keyshell.connections", port));
        Assert.Equal(server.ActiveConnections, meter.Observe("keyshell.active_connections"));
        Assert.Equal(server.Requests, meter.Sum("keyshell.requests", port));
        Assert.Equal(server.Requests - server.Errors, meter.Sum("keyshell.requests", ("keyshell.outcome", "ok")));
        Assert.Equal(server.Errors, meter.Sum("keyshell.requests", ("keyshell.outcome", "error")));
        Assert.Equal(server.Rejected, meter.Sum("keyshell.rejected_connections", ("error.type", "max_connections")));
        Assert.All(meter.Matching("keyshell.connection.duration"), m => Assert.InRange(m.Value, 0, Bound.TotalSeconds * 4));
        Assert.All(meter.Matching("keyshell.requests"), m => Assert.Equal("127.0.0.1", m.Tags["server.address"]));
    }

    [Fact]
    public void AListenerThatAttachesLateSeesTheOpenConnectionsAndZeroOnceTheyClose()
    {
        using var server = StartServer(o => { o.UseEventLoops = UseEventLoops; o.LogPath = null; });
        var clients = Enumerable.Range(0, 8).Select(_ => Connect(server.Port)).ToList();
        try
        {
            Eventually(() => server.ActiveConnections == 8, "eight open connections");
            using var late = new MeterCollector("KeyShell.Server", server.Port); // attaches to a server that is busy already
            Assert.Equal(8, late.Observe("keyshell.active_connections"));
            clients.ForEach(c => c.Dispose());
            Eventually(() => server.ActiveConnections == 0, "the connections closed");
            Assert.Equal(0, late.Observe("keyshell.active_connections"));
            Assert.All(late.Matching("keyshell.active_connections"), m => Assert.True(m.Value >= 0, $"a negative count: {m.Value}"));
            Assert.Equal("127.0.0.1", late.Matching("keyshell.active_connections").First().Tags["server.address"]);
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public void AStoppedServerIsNoLongerObserved()
    {
        var server = StartServer(o => { o.UseEventLoops = UseEventLoops; o.LogPath = null; });
        using var meter = new MeterCollector("KeyShell.Server", server.Port);
        Assert.Equal(0, meter.Observe("keyshell.active_connections"));
        server.Stop();
        Assert.Null(meter.Observe("keyshell.active_connections"));
    }

    [Fact]
    public void OneReadOfPipelinedRequestsIsOneAddPerOutcome()
    {
        using var server = StartServer(o => { o.UseEventLoops = UseEventLoops; o.LogPath = null; });
        using var meter = new MeterCollector("KeyShell.Server", server.Port);
        using (var a = Connect(server.Port))
        {
            Send(a, string.Concat(Enumerable.Repeat("1 1\n1 x\n", 50)));
            Assert.Equal(100, ReadLines(a, 100).Length);
        }

        Eventually(() => server.ActiveConnections == 0, "the connection closed");
        Assert.Equal(100, meter.Sum("keyshell.requests"));
        Assert.Equal(50, meter.Sum("keyshell.requests", ("keyshell.outcome", "error")));
        Assert.True(meter.Count("keyshell.requests") < 100, $"{meter.Count("keyshell.requests")} Adds for 100 requests sent in one write: one per request, not per read");
    }

    [Fact]
    public void AnIdleConnectionClosedByTheServerIsARejectionOfTypeIdle()
    {
        using var server = StartServer(o => { o.IdleTimeout = TimeSpan.FromMilliseconds(200); o.UseEventLoops = UseEventLoops; o.LogPath = null; });
        using var meter = new MeterCollector("KeyShell.Server", server.Port);
        using var client = Connect(server.Port);
        Assert.Equal(string.Empty, ReadToEnd(client)); // the server closes it
        Eventually(() => server.ActiveConnections == 0, "the idle connection closed");
        Assert.Equal(1, server.IdleClosed);
        Assert.Equal(server.IdleClosed, meter.Sum("keyshell.rejected_connections", ("error.type", "idle")));
        Assert.Equal(0, meter.Sum("keyshell.rejected_connections", ("error.type", "max_connections")));
    }

    [Fact]
    public async Task TheClientMeterCountsMeasureKeyServersRequestsByOutcome()
    {
        // Keys 0-4 only: the workers' requests for 5-9 get error replies.
        var map = new KeyMap(Enumerable.Range(0, 5).ToDictionary(k => k.ToString(), k => $"value {k}"));
        using var server = StartServer(o => { o.LogPath = null; o.KeyMap = map; });
        using var meter = new MeterCollector("KeyShell.Client", server.Port);
        var options = new LoadOptions { Port = server.Port, Concurrency = 2, Count = 1_000, Pipeline = 4, UseEventLoops = UseEventLoops };
        var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
        Assert.Equal(result.Requests, meter.Sum("keyshell.client.requests"));
        Assert.Equal(result.Errors, meter.Sum("keyshell.client.requests", ("keyshell.outcome", "error")));
        Assert.Equal(500, result.Errors);
        Assert.Equal(result.Requests, meter.Count("keyshell.client.request.duration"));
        Assert.All(meter.Matching("keyshell.client.requests"), m => Assert.Equal("127.0.0.1", m.Tags["server.address"]));
    }

    [Fact]
    public async Task TheClientMeterCountsInvokeKeyClientsRepliesAndFailures()
    {
        using var server = StartServer(o => o.LogPath = null);
        using var meter = new MeterCollector("KeyShell.Client", server.Port);
        var observer = new NullObserver();
        var sequences = new[] { "1 1 2 x", "2 4 5" }.Select(ClientSequence.Parse).ToArray();
        var summary = await KeyClient.RunAsync(sequences, new KeyClientOptions { Port = server.Port, UseEventLoops = UseEventLoops }, observer).WaitAsync(Bound);
        Assert.Equal(5, summary.Replies);
        Assert.Equal(4, meter.Sum("keyshell.client.requests", ("keyshell.outcome", "ok")));
        Assert.Equal(1, meter.Sum("keyshell.client.requests", ("keyshell.outcome", "error")));
        Assert.Equal(5, meter.Count("keyshell.client.request.duration"));

        // A server that is gone: the failed request counts as an error.
        var closedPort = FreePort();
        using var refused = new MeterCollector("KeyShell.Client", closedPort);
        var failed = await KeyClient.RunAsync(new[] { ClientSequence.Parse("1 1") }, new KeyClientOptions { Port = closedPort, UseEventLoops = UseEventLoops }, observer).WaitAsync(Bound);
        Assert.Equal(1, failed.Failures);
        Assert.Equal(1, refused.Sum("keyshell.client.requests", ("keyshell.outcome", "error")));
    }

    private sealed class NullObserver : IKeyClientObserver
    {
        public bool WantsSendNotices => false;

        public void OnSending(string clientId, string key)
        {
        }

        public void OnReply(KeyReply reply)
        {
        }

        public void OnFailure(KeyClientFailure failure)
        {
        }
    }
}

public sealed class MetricsTestsOnTheAsyncPath : MetricsTests
{
    protected override bool UseEventLoops => false;
}
