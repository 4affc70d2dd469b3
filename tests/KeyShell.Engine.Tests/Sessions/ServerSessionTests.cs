using System.Text;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Server;
using KeyShell.Engine.Sessions;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Tests.Sessions;

/// <summary>The server's protocol driven in memory: no socket, no server, only a session and its context.</summary>
public sealed class ServerSessionTests
{
    private const string Reply7 = "Response for the key 7 : 67";

    [Fact]
    public void ARequestSplitAcrossReadsIsAnsweredOnceWhole()
    {
        var harness = new ServerSessionHarness();
        var connection = harness.Connection;
        Assert.Equal(Step.Receive, connection.Open());
        Assert.Equal(Step.Receive, connection.Receive("3"));
        Assert.Equal(Step.Receive, connection.Receive(" "));
        Assert.Equal("", connection.TakeSent());
        Assert.Equal(Step.Receive, connection.Receive("7\n"));
        Assert.Equal(Reply7 + "\n", connection.TakeSent());
        Assert.Equal(1, harness.Session.Requests);
    }

    [Fact]
    public void PipelinedRequestsAreAnsweredInOrderInOneSendAndLoggedInOrder()
    {
        var harness = new ServerSessionHarness();
        var connection = harness.Connection;
        connection.Open();
        connection.Receive("a 1\nb 2\r\nc 3\n");
        Assert.Equal("Response for the key 1 : 45\nResponse for the key 2 : 78\nResponse for the key 3 : 23\n", connection.TakeSent());
        Assert.Equal(
            new[]
            {
                "SYSTEM: Client connected!",
                "Client: a 1", "Server: a Response for the key 1 : 45",
                "Client: b 2", "Server: b Response for the key 2 : 78",
                "Client: c 3", "Server: c Response for the key 3 : 23",
            },
            harness.Log.Lines);
        Assert.Equal(3, harness.Session.Requests);
        Assert.Equal(0, harness.Session.Errors);
    }

    [Fact]
    public void ARequestWithoutTerminatorIsAnsweredInTheSeedsFraming()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        harness.Connection.Receive("3 7");
        Assert.Equal(Reply7, harness.Connection.TakeSent());
    }

    [Fact]
    public void BadKeysAndMalformedRequestsGetErrorRepliesAndCountAsErrors()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        harness.Connection.Receive("1 42\nnonsense\n");
        var replies = harness.Connection.TakeSent().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, replies.Length);
        Assert.All(replies, r => Assert.StartsWith("Error:", r, StringComparison.Ordinal));
        Assert.Equal(2, harness.Session.Errors);
    }

    [Fact]
    public void ARequestPastTheLineLimitIsAnsweredThenTheConnectionDrainsAndCloses()
    {
        var harness = new ServerSessionHarness(o => o.MaxLineLength = 16);
        harness.Connection.Open();
        var step = harness.Connection.Receive(new string('x', 40));
        Assert.Equal(Step.DrainThenClose, step);
        Assert.StartsWith(Replies.TooLong, harness.Connection.TakeSent(), StringComparison.Ordinal);
        Assert.Contains(harness.Log.Lines, l => l.StartsWith("Client: xxxx", StringComparison.Ordinal) && l.Contains("...(truncated", StringComparison.Ordinal));
    }

    [Fact]
    public void AHalfCloseAfterAnUnfinishedRequestAnswersWhatCameThenCloses()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        harness.Connection.Receive("1 1\n2 ");
        Assert.Equal("Response for the key 1 : 45\n", harness.Connection.TakeSent());
        Assert.Equal(Step.Close, harness.Connection.End());
        Assert.StartsWith("Error:", harness.Connection.TakeSent(), StringComparison.Ordinal);
    }

    [Fact]
    public void OnceAStopHasBegunAConnectionDoneWithItsRequestDrainsAndCloses()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        Assert.Equal(Step.Receive, harness.Connection.Receive("1 1\n"));
        harness.Context.BeginStopping();
        Assert.Equal(Step.DrainThenClose, harness.Connection.Receive("1 2\n"));
        Assert.Equal("Response for the key 1 : 45\nResponse for the key 2 : 78\n", harness.Connection.TakeSent());
    }

    [Fact]
    public void ASwappedKeyMapAnswersFromTheNextRead()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        harness.Connection.Receive("1 7\n");
        harness.Context.KeyMap = new KeyMap(new[] { new KeyValuePair<string, string>("7", "seven") });
        harness.Connection.Receive("1 7\n");
        Assert.Equal(Reply7 + "\nResponse for the key 7 : seven\n", harness.Connection.TakeSent());
    }

    [Fact]
    public void ATlsClientOnAPlainPortIsRefusedAtItsFirstBytesAndNeverLoggedAsARequest()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        Assert.Equal(Step.Close, harness.Connection.Receive(new byte[] { 0x16, 0x03, 0x01, 0x00, 0x20 }));
        Assert.Equal("", harness.Connection.TakeSent());
        harness.Session.Closed();
        Assert.Equal(1, harness.Events.Rejected);
        Assert.Equal(new[] { "SYSTEM: Client refused (handshake)" }, harness.Log.Lines);
        Assert.Single(harness.Retired);
    }

    [Fact]
    public void AnIdleConnectionIsClaimedClosedCountedAndLoggedAsIdle()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        harness.Connection.Receive("1 1\n");
        harness.Session.Sweep(Environment.TickCount + 5_000, idleTimeoutMs: 1_000);
        Assert.True(harness.Connection.ClaimedAndClosed);
        Assert.Equal(CloseReason.Idle, harness.Session.CloseReason);
        Assert.Equal(1, harness.Events.IdleClosed);
        harness.Session.Closed();
        Assert.Equal(new[] { "SYSTEM: Client closed (idle)", "SYSTEM: Client deconnected!" }, harness.Log.Lines.Skip(3));
    }

    [Fact]
    public void ABusyConnectionIsNeverClosedAsIdle()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        harness.Connection.Waiting = false; // a request being read, or a reply being sent
        harness.Session.Sweep(Environment.TickCount + 5_000, idleTimeoutMs: 1_000);
        Assert.False(harness.Connection.ClaimedAndClosed);
        Assert.Equal(CloseReason.None, harness.Session.CloseReason);
        Assert.Equal(0, harness.Events.IdleClosed);
    }

    [Fact]
    public void AConnectionActiveWithinTheTimeoutIsLeftOpen()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        harness.Connection.Receive("1 1\n");
        harness.Session.Sweep(Environment.TickCount, idleTimeoutMs: 60_000);
        Assert.False(harness.Connection.ClaimedAndClosed);
    }

    [Fact]
    public void AConnectionWhoseRepliesDoNotDrainIsAbortedOnceAndLoggedAsStalled()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        harness.Connection.Receive("1 1\n");
        var now = Environment.TickCount;
        harness.Connection.BlockedSince = (now - 5_000) | 1;
        harness.Session.Sweep(now, idleTimeoutMs: 1_000);
        harness.Session.Sweep(now + 1_000, idleTimeoutMs: 1_000);
        Assert.Equal(1, harness.Connection.Aborts);
        Assert.Equal(1, harness.Events.IdleClosed);
        harness.Session.Closed();
        Assert.Contains("SYSTEM: Client closed (replies not read)", harness.Log.Lines);
    }

    [Fact]
    public void ClosingLogsTheDisconnectAndRetiresTheSessionOnce()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        harness.Connection.Receive("1 1\n");
        harness.Session.ConnectionEnded(Step.Close);
        Assert.Equal("SYSTEM: Client deconnected!", harness.Log.Lines.Last());
        Assert.Single(harness.Retired);
    }

    [Fact]
    public void AConnectionClosedBeforeAnyRequestStillLogsItsConnectAndDisconnect()
    {
        var harness = new ServerSessionHarness();
        harness.Connection.Open();
        Assert.Equal(Step.Close, harness.Connection.End());
        harness.Session.Closed();
        Assert.Equal(new[] { "SYSTEM: Client connected!", "SYSTEM: Client deconnected!" }, harness.Log.Lines);
    }

    [Fact]
    public void AHandlerAnswersEachRequestInOrderOffTheDriversThread()
    {
        var handler = new RecordingHandler(r => $"Response for the key {r.Key} : {r.ClientId}{r.Key}");
        var harness = new ServerSessionHarness(o => o.Handler = handler);
        harness.Connection.Open();
        var step = harness.Connection.Receive("a 1\nb 2\nc x\n");
        Assert.Equal(Step.Receive, step);
        Assert.Equal(new[] { Step.Handle, Step.Receive }, harness.Connection.Steps.Skip(1));
        Assert.Equal("Response for the key 1 : a1\nResponse for the key 2 : b2\nResponse for the key x : cx\n", harness.Connection.TakeSent());
        Assert.Equal(new[] { "a 1", "b 2", "c x" }, handler.Seen);
        Assert.Contains("Server: c Response for the key x : cx", harness.Log.Lines);
    }

    [Fact]
    public void AHandlerThatThrowsRepliesWithAnErrorAndTheNextRequestIsServed()
    {
        var handler = new RecordingHandler(r => r.Key == "1" ? throw new InvalidOperationException("no such thing") : "fine");
        var harness = new ServerSessionHarness(o => o.Handler = handler);
        harness.Connection.Open();
        harness.Connection.Receive("a 1\na 2\n");
        var replies = harness.Connection.TakeSent().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(new[] { "Error: handler failed: no such thing", "fine" }, replies);
        Assert.Equal(1, harness.Session.Errors);
    }

    [Fact]
    public async Task WhileAHandlerRunsTheConnectionCountsAsBusyForTheIdleSweep()
    {
        var gate = new ManualResetEventSlim();
        var handler = new RecordingHandler(_ =>
        {
            gate.Wait(TestSupport.Bound);
            return "done";
        });
        var harness = new ServerSessionHarness(o => o.Handler = handler);
        harness.Connection.Open();
        Assert.Equal(Step.Handle, harness.Session.Received(Encoding.ASCII.GetBytes("a 1\n"), new Scratch()));
        Assert.True(harness.Session.IsHandling);
        var scratch = new Scratch();
        var work = harness.Session.HandleAsync(scratch);
        harness.Session.Sweep(Environment.TickCount + 5_000, idleTimeoutMs: 1_000);
        Assert.False(harness.Connection.ClaimedAndClosed);
        gate.Set();
        await work.WaitAsync(TestSupport.Bound);
        Assert.False(harness.Session.IsHandling);
    }

    private sealed class RecordingHandler : IKeyRequestHandler
    {
        private readonly Func<KeyRequest, string> _reply;

        public RecordingHandler(Func<KeyRequest, string> reply) => _reply = reply;

        public List<string> Seen { get; } = new();

        public Task<string> HandleAsync(KeyRequest request, CancellationToken cancellationToken)
        {
            Seen.Add(request.ClientId + " " + request.Key);
            return Task.Run(() => _reply(request), cancellationToken);
        }
    }
}
