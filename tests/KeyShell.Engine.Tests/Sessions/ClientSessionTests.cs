using System.Net.Sockets;
using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Sessions;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Tests.Sessions;

/// <summary>A client's sequence and a load worker, driven in memory: no socket, no client, no load generator.</summary>
public sealed class ClientSessionTests
{
    [Fact]
    public void APersistentSequenceSendsEachKeyOnlyOnceTheLastReplyCameAndClosesAfterTheLast()
    {
        var owner = new SequenceOwner(ConnectionMode.Persistent);
        var session = new SequenceSession(owner, ClientSequence.Parse("3 7 8"));
        var connection = new InMemoryConnection(session);
        Assert.Equal(Step.Receive, connection.Open());
        Assert.Equal("3 7\n", connection.TakeSent());
        Assert.Equal(Step.Receive, connection.Receive("Response for the key 7 : 67\n"));
        Assert.Equal("3 8\n", connection.TakeSent());
        Assert.Equal(Step.Close, connection.Receive("Response for the key 8 : 90\n"));
        Assert.Equal("", connection.TakeSent());
        Assert.Equal(new[] { "7 -> Response for the key 7 : 67", "8 -> Response for the key 8 : 90" }, owner.Replies.Select(r => $"{r.Key} -> {r.Reply}"));
        Assert.Equal(new[] { "3 7", "3 8" }, owner.Sent);
        session.Closed();
        Assert.True(session.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public void APerMessageSequenceAsksForANewConnectionForEachKey()
    {
        var owner = new SequenceOwner(ConnectionMode.PerMessage);
        var session = new SequenceSession(owner, ClientSequence.Parse("1 1 2"));
        var first = new InMemoryConnection(session);
        first.Open();
        Assert.Equal("1 1\n", first.TakeSent());
        Assert.Equal(Step.Reconnect, first.Receive("Response for the key 1 : 45\n"));
        var second = new InMemoryConnection(session);
        second.Open();
        Assert.Equal("1 2\n", second.TakeSent());
        Assert.Equal(Step.Close, second.Receive("Response for the key 2 : 78\n"));
        Assert.Equal(2, owner.Replies.Count);
    }

    [Fact]
    public void AReplySplitAcrossReadsIsDeliveredOnceWhole()
    {
        var owner = new SequenceOwner(ConnectionMode.Persistent);
        var session = new SequenceSession(owner, ClientSequence.Parse("1 1"));
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal(Step.Receive, connection.Receive("Response for the"));
        Assert.Empty(owner.Replies);
        Assert.Equal(Step.Close, connection.Receive(" key 1 : 45\n"));
        Assert.Equal("Response for the key 1 : 45", owner.Replies.Single().Reply);
    }

    [Fact]
    public void InTheSeedsFramingARequestHasNoTerminatorAndAReadIsAReply()
    {
        var owner = new SequenceOwner(ConnectionMode.PerMessage, Framing.Legacy);
        var session = new SequenceSession(owner, ClientSequence.Parse("2 4"));
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal("2 4", connection.TakeSent());
        Assert.Equal(Step.Close, connection.Receive("Response for the key 4 : 56"));
        Assert.Equal("Response for the key 4 : 56", owner.Replies.Single().Reply);
    }

    [Fact]
    public void ARefusedConnectIsReportedAsConnectFailedWithWhereTheSequenceStopped()
    {
        var owner = new SequenceOwner(ConnectionMode.Persistent);
        var session = new SequenceSession(owner, ClientSequence.Parse("1 5 6"));
        var step = session.Failed(new ConnectFailedException(new SocketException((int)SocketError.ConnectionRefused)));
        Assert.Equal(Step.Close, step);
        var failure = owner.Failures.Single();
        Assert.Equal(FailureKind.ConnectFailed, failure.Kind);
        Assert.Equal(0, failure.Index);
        Assert.Contains("connection refused", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnAbortIsReportedForTheReasonItWasGivenAndReachesTheLink()
    {
        var owner = new SequenceOwner(ConnectionMode.Persistent);
        var link = new RecordingLink();
        var session = new SequenceSession(owner, ClientSequence.Parse("1 5 6")) { Link = link };
        var connection = new InMemoryConnection(session);
        connection.Open();
        connection.Receive("Response for the key 5 : 89\n");
        session.Abort(FailureKind.Timeout);
        Assert.Equal(1, link.Aborts);
        connection.Fail(new SocketException((int)SocketError.OperationAborted));
        var failure = owner.Failures.Single();
        Assert.Equal(FailureKind.Timeout, failure.Kind);
        Assert.Equal(1, failure.Index);
    }

    [Fact]
    public void TheServerClosingBeforeTheReplyIsAConnectionLost()
    {
        var owner = new SequenceOwner(ConnectionMode.Persistent);
        var session = new SequenceSession(owner, ClientSequence.Parse("1 5"));
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal(Step.Close, connection.End());
        Assert.Equal(FailureKind.ConnectionLost, owner.Failures.Single().Kind);
    }

    [Fact]
    public void ALoadWorkerSendsItsPipelinedBatchCountsItsRepliesAndItsErrorsAndStopsAtItsQuota()
    {
        var owner = new LoadOwner(new LoadOptions { Pipeline = 3, Connection = ConnectionMode.Persistent });
        var session = new LoadSession(owner, 0, quota: 6, runDeadline: long.MaxValue, new LatencyHistogram());
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal("w0 0\nw0 1\nw0 2\n", connection.TakeSent());
        Assert.Equal(Step.Receive, connection.Receive("Response for the key 0 : 12\nResponse for the key 1 : 45\n"));
        Assert.Empty(owner.Batches);
        Assert.Equal(Step.Receive, connection.Receive("Error: enter a number between 0 and 9\n"));
        Assert.Equal((3, 1), owner.Batches.Single());
        Assert.Equal("w0 3\nw0 4\nw0 5\n", connection.TakeSent());
        Assert.Equal(Step.Close, connection.Receive("Response for the key 3 : 23\nResponse for the key 4 : 56\nResponse for the key 5 : 89\n"));
        Assert.Equal(new[] { (3, 1), (3, 0) }, owner.Batches);
    }

    [Fact]
    public void ALoadWorkerCountsAFailedBatchAsErrorsAndReconnectsAMomentLater()
    {
        var owner = new LoadOwner(new LoadOptions { Pipeline = 2, Connection = ConnectionMode.Persistent });
        var session = new LoadSession(owner, 0, quota: 10, runDeadline: long.MaxValue, new LatencyHistogram());
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal(Step.ReconnectSoon, connection.Fail(new SocketException((int)SocketError.ConnectionReset)));
        Assert.Equal((2, 2), owner.Batches.Single());
        var next = new InMemoryConnection(session);
        next.Open();
        Assert.Equal("w0 2\nw0 3\n", next.TakeSent());
    }

    [Fact]
    public void APerMessageLoadWorkerReconnectsForEachRequest()
    {
        var owner = new LoadOwner(new LoadOptions { Connection = ConnectionMode.PerMessage });
        var session = new LoadSession(owner, 4, quota: 2, runDeadline: long.MaxValue, new LatencyHistogram());
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal("w4 4\n", connection.TakeSent());
        Assert.Equal(Step.Reconnect, connection.Receive("Response for the key 4 : 56\n"));
    }

    private sealed class RecordingLink : ILink
    {
        public int Aborts { get; private set; }

        public void Abort() => Aborts++;
    }

    private sealed class SequenceOwner : ISequenceOwner
    {
        public SequenceOwner(ConnectionMode connection, Framing framing = Framing.Line)
        {
            Connection = connection;
            Framing = framing;
        }

        public Framing Framing { get; }

        public ConnectionMode Connection { get; }

        public TimeSpan Timeout => TimeSpan.FromSeconds(5);

        public string DisplayEndPoint => "127.0.0.1:8080";

        public List<string> Sent { get; } = new();

        public List<KeyReply> Replies { get; } = new();

        public List<KeyClientFailure> Failures { get; } = new();

        public void Sending(string clientId, string key) => Sent.Add(clientId + " " + key);

        public void Deliver(KeyReply reply, byte[] request) => Replies.Add(reply);

        public void Fail(KeyClientFailure failure) => Failures.Add(failure);
    }

    private sealed class LoadOwner : ILoadOwner
    {
        public LoadOwner(LoadOptions options) => Options = options;

        public LoadOptions Options { get; }

        public List<(int Count, int Errors)> Batches { get; } = new();

        public byte[][] RequestsOf(int id) =>
            Enumerable.Range(0, 10).Select(k => System.Text.Encoding.ASCII.GetBytes($"w{id} {(id + k) % 10}\n")).ToArray();

        public void Fail(Exception failure) => throw failure;

        public void Record(LatencyHistogram latency, long started, int count, int errors) => Batches.Add((count, errors));
    }
}
