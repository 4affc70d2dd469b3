using System.Net.Sockets;
using HdrHistogram;
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
    public void ALoadWorkerSendsItsPipelinedBatchChecksItsRepliesAndStopsAtItsQuota()
    {
        var owner = new LoadOwner(new LoadOptions { Pipeline = 3, Connection = ConnectionMode.Persistent });
        var recorder = new LoadRecorder(1);
        var session = new LoadSession(owner, 0, quota: 6, recorder.StripeOf(0));
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal("w0 0\nw0 1\nw0 2\n", connection.TakeSent());
        Assert.Equal(Step.Receive, connection.Receive("Response for the key 0 : 12\nResponse for the key 1 : 45\n"));
        Assert.Empty(owner.Batches);
        Assert.Equal(Step.Receive, connection.Receive("Error: enter a number between 0 and 9\n"));
        Assert.Equal(3, owner.Batches.Single());
        Assert.Equal("w0 3\nw0 4\nw0 5\n", connection.TakeSent());
        Assert.Equal(Step.Close, connection.Receive("Response for the key 3 : 23\nResponse for the key 4 : 56\nResponse for the key 5 : 89\n"));
        Assert.Equal(new[] { 3, 3 }, owner.Batches);
        var (second, total) = Drain(recorder);
        Assert.Equal(5, total.Corrected.TotalCount);
        Assert.Equal(1, total.Errors[(int)LoadErrorKind.ErrorReply]);
        Assert.Equal(5, second.Corrected.TotalCount);
        Assert.Equal((5, 1), (owner.Ok, owner.Errors));
    }

    [Fact]
    public void ALoadWorkerTakesAReplyForAnotherKeyAsUnexpectedAndReconnects()
    {
        var owner = new LoadOwner(new LoadOptions { Connection = ConnectionMode.Persistent });
        var recorder = new LoadRecorder(1);
        var session = new LoadSession(owner, 0, quota: 10, recorder.StripeOf(0));
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal("w0 0\n", connection.TakeSent());
        Assert.Equal(Step.Reconnect, connection.Receive("Response for the key 7 : 67\n")); // nothing after it can be trusted
        Assert.Equal(1, Drain(recorder).Total.Errors[(int)LoadErrorKind.UnexpectedReply]);
    }

    [Fact]
    public void ALoadWorkerCountsAFailedBatchAsErrorsOfItsKindAndReconnectsAMomentLater()
    {
        var owner = new LoadOwner(new LoadOptions { Pipeline = 2, Connection = ConnectionMode.Persistent });
        var recorder = new LoadRecorder(1);
        var session = new LoadSession(owner, 0, quota: 10, recorder.StripeOf(0));
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal(Step.ReconnectSoon, connection.Fail(new SocketException((int)SocketError.ConnectionReset)));
        Assert.Equal(2, owner.Batches.Single());
        Assert.Equal(2, Drain(recorder).Total.Errors[(int)LoadErrorKind.ConnectionLost]);
        var next = new InMemoryConnection(session);
        next.Open();
        Assert.Equal("w0 2\nw0 3\n", next.TakeSent());
    }

    [Fact]
    public void APerMessageLoadWorkerReconnectsForEachRequest()
    {
        var owner = new LoadOwner(new LoadOptions { Connection = ConnectionMode.PerMessage });
        var session = new LoadSession(owner, 4, quota: 2, new LoadRecorder(1).StripeOf(0));
        var connection = new InMemoryConnection(session);
        connection.Open();
        Assert.Equal("w4 4\n", connection.TakeSent());
        Assert.Equal(Step.Reconnect, connection.Receive("Response for the key 4 : 56\n"));
    }

    [Fact]
    public void AnOpenLoopWorkerSleepsUntilItsBatchIsDueThenSendsIt()
    {
        // The run starts a minute from now: every batch is due in the future, and the driver's timer wakes it.
        var start = System.Diagnostics.Stopwatch.GetTimestamp() + 60 * System.Diagnostics.Stopwatch.Frequency;
        var owner = new LoadOwner(new LoadOptions { Rate = 100, Concurrency = 2, Connection = ConnectionMode.Persistent }) { RunStart = start };
        var session = new LoadSession(owner, 1, quota: 3, new LoadRecorder(1).StripeOf(0));
        var connection = new InMemoryConnection(session);
        Assert.Equal(Step.Sleep, connection.Open());
        Assert.Equal("", connection.TakeSent()); // nothing before its time
        var interval = 2 * System.Diagnostics.Stopwatch.Frequency / 100; // 2 connections at 100/s: 20 ms each
        Assert.InRange(session.WakeAt, start + interval / 2 - 1, start + interval / 2 + 1); // worker 1 of 2: half an interval after the start
        Assert.Equal(Step.Receive, connection.Wake());
        Assert.Equal("w1 1\n", connection.TakeSent());
        Assert.Equal(Step.Sleep, connection.Receive("Response for the key 1 : 45\n"));
        Assert.InRange(session.WakeAt, start + interval / 2 + interval - 1, start + interval / 2 + interval + 1);
        Assert.Equal(Step.Receive, connection.Wake());
        Assert.Equal("w1 2\n", connection.TakeSent());
    }

    [Fact]
    public void AnOpenLoopBatchPastItsTimeGoesAtOnceAndCountsAsLate()
    {
        // The run started ten seconds ago at 100/s: the worker's first batches are long overdue.
        var start = System.Diagnostics.Stopwatch.GetTimestamp() - 10 * System.Diagnostics.Stopwatch.Frequency;
        var owner = new LoadOwner(new LoadOptions { Rate = 100, Concurrency = 1, Connection = ConnectionMode.Persistent }) { RunStart = start };
        var recorder = new LoadRecorder(1);
        var session = new LoadSession(owner, 0, quota: 2, recorder.StripeOf(0));
        var connection = new InMemoryConnection(session);
        Assert.Equal(Step.Receive, connection.Open());
        Assert.Equal("w0 0\n", connection.TakeSent());
        Assert.Equal(Step.Receive, connection.Receive("Response for the key 0 : 12\n"));
        Assert.Equal(Step.Close, connection.Receive("Response for the key 1 : 45\n"));
        var total = Drain(recorder).Total;
        Assert.Equal(2, total.Late);
        Assert.True(total.Corrected.GetMaxValue() >= 9_000_000, "latencies count from the time each request was due, ten seconds ago");
        Assert.True(total.Uncorrected.GetMaxValue() < 9_000_000, "uncorrected latencies count from the time each was sent");
    }

    [Fact]
    public void AnOpenLoopPerMessageWorkerOpensItsConnectionWhenItsBatchIsDue()
    {
        var start = System.Diagnostics.Stopwatch.GetTimestamp() + 60 * System.Diagnostics.Stopwatch.Frequency;
        var owner = new LoadOwner(new LoadOptions { Rate = 100, Concurrency = 1, Connection = ConnectionMode.PerMessage }) { RunStart = start };
        var session = new LoadSession(owner, 0, quota: 2, new LoadRecorder(1).StripeOf(0));
        var early = new InMemoryConnection(session);
        Assert.Equal(Step.Sleep, early.Open());
        Assert.Equal(Step.Reconnect, early.Wake()); // opened before its time: a new one, so the batch's time holds its connect
        Assert.Equal("", early.TakeSent());
        var own = new InMemoryConnection(session);
        Assert.Equal(Step.Receive, own.Open());
        Assert.Equal("w0 0\n", own.TakeSent());
    }

    private static (LoadInterval Second, LoadInterval Total) Drain(LoadRecorder recorder)
    {
        var second = new LoadInterval(second: true);
        var total = new LoadInterval();
        recorder.Drain(second, total);
        return (second, total);
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

        public bool SkipReplyCheck => false;

        public List<string> Sent { get; } = new();

        public List<KeyReply> Replies { get; } = new();

        public List<KeyClientFailure> Failures { get; } = new();

        public void Sending(string clientId, string key) => Sent.Add(clientId + " " + key);

        public void Deliver(KeyReply reply, byte[] request) => Replies.Add(reply);

        public void Fail(KeyClientFailure failure) => Failures.Add(failure);
    }

    private sealed class LoadOwner : ILoadOwner
    {
        public LoadOwner(LoadOptions options)
        {
            Options = options;
            KeyBytes = options.Keys.Select(k => System.Text.Encoding.ASCII.GetBytes(k)).ToArray();
        }

        public LoadOptions Options { get; }

        public byte[][] KeyBytes { get; }

        public long RunStart { get; init; }

        public long MeasureFrom => 0;

        public long RunDeadline => long.MaxValue;

        /// <summary>Each finished batch's measured requests.</summary>
        public List<int> Batches { get; } = new();

        public long Ok { get; private set; }

        public long Errors { get; private set; }

        public void Counted(long ok, long errors, long started, long now)
        {
            Ok += ok;
            Errors += errors;
        }

        public void Finished(int measured) => Batches.Add(measured);

        public void Fail(Exception failure) => throw failure;
    }
}
