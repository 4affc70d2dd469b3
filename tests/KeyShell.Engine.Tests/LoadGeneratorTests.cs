using KeyShell.Engine.Client;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

public class LoadGeneratorTests
{
    [Fact]
    public async Task RequestsASilentServerNeverAnswersTimeOutAsErrors()
    {
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start(); // connections wait in the backlog; nothing is ever read or answered
        var options = new LoadOptions
        {
            Port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port,
            Concurrency = 2,
            Count = 6,
            Timeout = TimeSpan.FromMilliseconds(300),
        };
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
        Assert.Equal(6, result.Requests);
        Assert.Equal(6, result.Errors);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(900), $"three rounds of 300 ms per worker took only {watch.Elapsed}");
    }

    [Fact]
    public async Task AnsweredRequestsAreNotTimedOut()
    {
        using var server = StartServer(o => o.LogPath = null);
        var options = new LoadOptions { Port = server.Port, Concurrency = 4, Count = 20_000, Timeout = TimeSpan.FromSeconds(5) };
        var result = await new LoadGenerator(options).RunAsync().WaitAsync(Bound);
        Assert.Equal(20_000, result.Requests);
        Assert.Equal(0, result.Errors);
    }
}
