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

    /// <summary>The requests worker <paramref name="id"/> sends, in turn, in the options' framing.</summary>
    byte[][] RequestsOf(int id);

    /// <summary>Ends the whole run with <paramref name="failure"/> (a configuration error every worker would meet).</summary>
    void Fail(Exception failure);

    /// <summary>Counts one batch: <paramref name="count"/> requests started at <paramref name="started"/> (a Stopwatch timestamp), <paramref name="errors"/> of them failed.</summary>
    void Record(LatencyHistogram latency, long started, int count, int errors);
}
