using System.Runtime.InteropServices;
using KeyShell.Engine.Client;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Server;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>
/// Servers and clients of one process that name the same log share its writer, and a reply a client holds
/// is in the log already: on both drivers.
/// </summary>
#if ENGINE_NETSTANDARD
// The netstandard2.0 build has no event loops: there these tests run once, as LogSharingTestsOnTheAsyncPath.
public abstract class LogSharingTests : TransportTests
#else
public class LogSharingTests : TransportTests
#endif
{
    private static readonly bool OtherProcessesAreKeptOut = RuntimeInformation.IsOSPlatform(OSPlatform.Linux) || RuntimeInformation.IsOSPlatform(OSPlatform.Windows);

    [Fact]
    public async Task TwoServersOnOneLogPathKeepEveryRequestOfBoth()
    {
        const int clientsPerServer = 4, requests = 300;
        var path = Path.Combine(TempDirectory(), "shared.log");
        File.WriteAllText(path, "SYSTEM: an old run\n");
        var a = StartServer(o => o.LogPath = path);
        var b = StartServer(o => o.LogPath = path);
        var expected = new Dictionary<string, IReadOnlyList<string>>();
        var traffic = new List<Task>();
        foreach (var (server, name) in new[] { (a, "a"), (b, "b") })
        {
            for (var c = 0; c < clientsPerServer; c++)
            {
                var id = $"{name}{c}";
                var keys = Enumerable.Range(0, requests).Select(i => ((i + c) % 10).ToString()).ToArray();
                expected[id] = keys;
                var port = server.Port;
                traffic.Add(Task.Run(() =>
                {
                    using var socket = Connect(port);
                    foreach (var key in keys)
                    {
                        Send(socket, $"{id} {key}\n");
                        Assert.Equal(Reply(int.Parse(key)), ReadLines(socket, 1).Single());
                    }
                }));
            }
        }

        await Task.WhenAll(traffic).WaitAsync(Bound);
        a.Stop();
        b.Stop();

        var lines = File.ReadAllLines(path);
        Assert.Equal("SYSTEM: Server launched", lines[0]); // emptied once, by the first
        Assert.Equal(2, lines.Count(l => l == "SYSTEM: Server launched"));
        Assert.Equal(2, lines.Count(l => l == "SYSTEM: Server stopped"));
        var check = ConversationCheck.Verify(path, expected);
        Assert.True(check.IsValid, string.Join("\n", check.Problems));
        Assert.Equal(2 * clientsPerServer * requests, check.Requests);
        Assert.Equal(2 * clientsPerServer * requests, check.Replies);
    }

    [Fact]
    public void AServerThatJoinsALogEmptiesNothingAndOneThatStopsFirstClosesNothing()
    {
        var path = Path.Combine(TempDirectory(), "shared.log");
        var first = StartServer(o => o.LogPath = path);
        using (var client = Connect(first.Port))
        {
            Send(client, "1 1\n");
            Assert.Equal(Reply(1), ReadLines(client, 1).Single());
        }

        using var second = StartServer(o => o.LogPath = path);
        Assert.Contains("Server: 1 " + Reply(1), LogLines(path));
        first.Stop();
        using (var client = Connect(second.Port))
        {
            Send(client, "2 2\n");
            Assert.Equal(Reply(2), ReadLines(client, 1).Single());
        }

        var lines = LogLines(path);
        Assert.True(Array.IndexOf(lines, "SYSTEM: Server stopped") < Array.IndexOf(lines, "Client: 2 2"));
        Assert.Equal(Array.IndexOf(lines, "Client: 2 2") + 1, Array.IndexOf(lines, "Server: 2 " + Reply(2)));
        Assert.Equal(0, second.LogErrors);
    }

    [Fact]
    public void EveryReplyAPersistentClientHoldsIsInTheLogAlready()
    {
        using var server = StartServer();
        using var client = Connect(server.Port);
        for (var i = 0; i < 300; i++)
        {
            Send(client, $"p{i} {i % 10}\n");
            Assert.Equal(Reply(i % 10), ReadLines(client, 1).Single());
            Assert.Equal($"Server: p{i} {Reply(i % 10)}", LogLines(server.LogPath!)[^1]); // no stop, no flush: the file as a crash would leave it
        }
    }

    [Fact]
    public void EveryReplyAClientOnAConnectionPerMessageHoldsIsInTheLogAlready()
    {
        using var server = StartServer();
        for (var i = 0; i < 100; i++)
        {
            using var client = Connect(server.Port);
            Send(client, $"m{i} {i % 10}"); // the seed's framing: one read, one request
            Assert.Equal(Reply(i % 10), ReceiveOnce(client));
            Assert.Contains($"Server: m{i} {Reply(i % 10)}", LogLines(server.LogPath!));
        }
    }

    [Fact]
    public void EveryReplyAHandlerGaveIsInTheLogBeforeTheClientHasIt()
    {
        using var server = StartServer(o => o.Handler = new EchoHandler());
        using var client = Connect(server.Port);
        for (var i = 0; i < 100; i++)
        {
            Send(client, $"h{i} {i}\n");
            Assert.Equal($"handled {i}", ReadLines(client, 1).Single());
            Assert.Equal($"Server: h{i} handled {i}", LogLines(server.LogPath!)[^1]);
        }
    }

    [SkippableFact]
    public void AServerOnALogAnotherProcessWritesFailsWithLogPathInUseAndTouchesNothing()
    {
        Skip.IfNot(OtherProcessesAreKeptOut, "only Linux and Windows keep other processes out of a log in use");
        var path = Path.Combine(TempDirectory(), "taken.log");
        File.WriteAllText(path, "SYSTEM: Server launched\nClient: 1 1\n");
        using var otherProcess = LogFile.Open(path, empty: false); // past this process's table: as another process's open
        var before = File.ReadAllBytes(path);
        var number = FreePort();
        var error = Assert.Throws<KeyServerException>(() => StartServer(o => { o.Port = number; o.LogPath = path; }));
        Assert.Equal(KeyServerErrorKind.LogPathInUse, error.Kind);
        Assert.Equal(path, error.Target);
        Assert.IsType<LogPathInUseException>(error.InnerException);
        Assert.Equal(before, File.ReadAllBytes(path));
        using var again = StartServer(o => o.Port = number); // nothing was left listening
        Assert.Equal(number, again.Port);
    }

    [SkippableFact]
    public async Task AClientOnALogAnotherProcessWritesFailsWithLogPathInUseAndTouchesNothing()
    {
        Skip.IfNot(OtherProcessesAreKeptOut, "only Linux and Windows keep other processes out of a log in use");
        using var server = StartServer(o => o.LogPath = null);
        var path = Path.Combine(TempDirectory(), "taken.log");
        File.WriteAllText(path, "SYSTEM: Client launched\n");
        using var otherProcess = LogFile.Open(path, empty: false);
        var observer = new CountingObserver();
        var error = await Assert.ThrowsAsync<LogPathInUseException>(() => KeyClient.RunAsync(
            new[] { ClientSequence.Parse("1 1") }, new KeyClientOptions { Port = server.Port, LogPath = path, UseEventLoops = UseEventLoops }, observer).WaitAsync(Bound));
        Assert.Equal(path, error.Path);
        Assert.Equal("SYSTEM: Client launched\n", File.ReadAllText(path));
        Assert.Equal(0, server.Requests); // it stopped before it sent anything
    }

    [Fact]
    public async Task AClientAndAServerOfOneProcessShareOneLog()
    {
        var path = Path.Combine(TempDirectory(), "conversation_log.txt");
        using var server = StartServer(o => o.LogPath = path);
        var sequences = new[] { "1 1 2 3", "2 4 5 6", "3 7 8 9" };
        var observer = new CountingObserver();
        await KeyClient.RunAsync(sequences.Select(ClientSequence.Parse).ToArray(), new KeyClientOptions { Port = server.Port, LogPath = path, UseEventLoops = UseEventLoops }, observer).WaitAsync(Bound);
        server.Stop();

        // As the seed's: the server's lines and the client's in one file, each request twice, in each client's order.
        var lines = File.ReadAllLines(path);
        Assert.Equal("SYSTEM: Server launched", lines[0]);
        Assert.Contains("SYSTEM: Client launched", lines);
        Assert.Contains("SYSTEM: Client stopped", lines);
        var check = ConversationCheck.Verify(path);
        Assert.True(check.IsValid, string.Join("\n", check.Problems));
        Assert.Equal(18, check.Requests);
        Assert.Equal(9, observer.Replies);
    }

    private sealed class EchoHandler : IKeyRequestHandler
    {
        public Task<string> HandleAsync(KeyRequest request, CancellationToken cancellationToken) => Task.FromResult("handled " + request.Key);
    }

    private sealed class CountingObserver : IKeyClientObserver
    {
        private int _replies;

        public int Replies => Volatile.Read(ref _replies);

        public bool WantsSendNotices => false;

        public void OnSending(string clientId, string key)
        {
        }

        public void OnReply(KeyReply reply) => Interlocked.Increment(ref _replies);

        public void OnFailure(KeyClientFailure failure)
        {
        }
    }
}

/// <summary>Every test of <see cref="LogSharingTests"/> on the portable async path.</summary>
public sealed class LogSharingTestsOnTheAsyncPath : LogSharingTests
{
    protected override bool UseEventLoops => false;
}
