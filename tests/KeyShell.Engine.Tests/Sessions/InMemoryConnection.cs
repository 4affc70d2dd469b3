using System.Text;
using KeyShell.Engine.Transport;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests.Sessions;

/// <summary>
/// A driver in memory, as Bedrock tests its protocols over in-memory pipes: it calls a session as a
/// driver would (open, bytes, end, failure, handler work), sends what the session wrote into a string,
/// and records what the session asked of its connection. No socket, no thread of its own.
/// </summary>
internal sealed class InMemoryConnection : IConnection
{
    private readonly ISession _session;
    private readonly Scratch _scratch = new();
    private readonly StringBuilder _sent = new();

    public InMemoryConnection(ISession session) => _session = session;

    /// <summary>What the connection does now: waiting for the peer (an idle close may claim it) or busy.</summary>
    public bool Waiting { get; set; } = true;

    public int BlockedSince { get; set; }

    public int Aborts { get; private set; }

    public bool CloseWhenIdleAsked { get; private set; }

    public bool ClaimedAndClosed { get; private set; }

    /// <summary>Every step the session returned, in order.</summary>
    public List<Step> Steps { get; } = new();

    public void Abort() => Aborts++;

    public void CloseWhenIdle() => CloseWhenIdleAsked = true;

    public bool TryClaimIdle()
    {
        if (!Waiting)
        {
            return false;
        }

        Waiting = false;
        return true;
    }

    public void CloseClaimed() => ClaimedAndClosed = true;

    public Step Open() => Settle(_session.Opened(this, _scratch));

    public Step Receive(string text) => Receive(Encoding.ASCII.GetBytes(text));

    public Step Receive(byte[] bytes) => Settle(_session.Received(bytes, _scratch));

    public Step End() => Settle(_session.Ended(_scratch));

    public Step Fail(Exception error) => Settle(_session.Failed(error));

    /// <summary>The session's sleep is over (a driver's timer, at <see cref="ISession.WakeAt"/>).</summary>
    public Step Wake() => Settle(_session.Woken(_scratch));

    /// <summary>What the session sent since the last call, as text; the buffer is emptied.</summary>
    public string TakeSent()
    {
        var sent = _sent.ToString();
        _sent.Clear();
        return sent;
    }

    /// <summary>Sends what the session wrote, as a driver does; runs a handler's work to its end.</summary>
    private Step Settle(Step step)
    {
        while (true)
        {
            Steps.Add(step);
            _sent.Append(Encoding.UTF8.GetString(_scratch.Output.Span.ToArray()));
            _scratch.Output.Clear();
            if (step != Step.Handle)
            {
                return step;
            }

            var work = _session.HandleAsync(_scratch);
            Assert.True(work.Wait(Bound), "the handler's work did not finish");
            step = work.Result;
        }
    }
}
