using System;
using KeyShell.Engine.Client;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Sessions;

/// <summary>What a client sequence's session needs of the run it belongs to.</summary>
internal interface ISequenceOwner
{
    Framing Framing { get; }

    ConnectionMode Connection { get; }

    /// <summary>How long a request may wait for its reply (the run's watchdog enforces it through the link).</summary>
    TimeSpan Timeout { get; }

    /// <summary>The server as the user named it, for messages.</summary>
    string DisplayEndPoint { get; }

    /// <summary>Takes any one-line reply that is not an error as an answer (servers whose handlers reply in a form of their own).</summary>
    bool SkipReplyCheck { get; }

    /// <summary>A request is about to be sent.</summary>
    void Sending(string clientId, string key);

    /// <summary>A reply arrived for <paramref name="request"/> (its bytes as sent).</summary>
    void Deliver(KeyReply reply, byte[] request);

    void Fail(KeyClientFailure failure);
}

/// <summary>What a load worker's session needs of the load run it belongs to.</summary>
internal interface ILoadOwner
{
    LoadOptions Options { get; }

    /// <summary>The keys, as bytes, that the workers send in turn.</summary>
    byte[][] KeyBytes { get; }

    /// <summary>When the run began (a Stopwatch timestamp): an open loop's schedule starts here.</summary>
    long RunStart { get; }

    /// <summary>From when requests are measured (the warm-up's end): those that end before count nowhere.</summary>
    long MeasureFrom { get; }

    /// <summary>When a timed run stops sending.</summary>
    long RunDeadline { get; }

    /// <summary>The meters: <paramref name="ok"/> and <paramref name="errors"/> requests sent at <paramref name="started"/> ended at <paramref name="now"/>.</summary>
    void Counted(long ok, long errors, long started, long now);

    /// <summary>A batch is over, <paramref name="measured"/> of its requests inside the measured window (the quota counts these).</summary>
    void Finished(int measured);

    /// <summary>Ends the whole run with <paramref name="failure"/> (a configuration error every worker would meet).</summary>
    void Fail(Exception failure);
}
