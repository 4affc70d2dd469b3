using System;

namespace KeyShell.Engine.Client;

/// <summary>Why a sequence was cut short.</summary>
public enum FailureKind
{
    /// <summary>The server refused or did not take the connection.</summary>
    ConnectFailed,
    /// <summary>The connection closed or was reset before the reply came.</summary>
    ConnectionLost,
    /// <summary>No reply within the timeout.</summary>
    Timeout,
    /// <summary>The watchdog found the server gone; the sequence was stopped.</summary>
    ServerGone,
    /// <summary>The reply broke the protocol (too long, or not text).</summary>
    ProtocolError,
    /// <summary>The run was cancelled (Ctrl+C).</summary>
    Cancelled,
    /// <summary>The server's TLS certificate is not trusted (the exception is a TlsCertificateUntrustedException).</summary>
    TlsCertificateUntrusted,
    /// <summary>The TLS handshake failed: the port is not TLS, the server refused the client's certificate, or it timed out.</summary>
    TlsHandshakeFailed,
    /// <summary>The reply is not the protocol's reply to the key sent (another protocol, another key's
    /// answer, a reply cut off, a line nobody asked for): the sequence stops there.</summary>
    UnexpectedReply,
}

/// <summary>A sequence that could not finish: which key it stopped at, and why.</summary>
public sealed class KeyClientFailure
{
    public KeyClientFailure(ClientSequence sequence, int index, FailureKind kind, string message, Exception? exception)
    {
        Sequence = sequence;
        Index = index;
        Kind = kind;
        Message = message;
        Exception = exception;
    }

    public ClientSequence Sequence { get; }

    public string ClientId => Sequence.ClientId;

    /// <summary>The index of the first key with no reply.</summary>
    public int Index { get; }

    public string Key => Sequence.Keys[Index];

    public FailureKind Kind { get; }

    public string Message { get; }

    public Exception? Exception { get; }

    public override string ToString() => Message;
}

/// <summary>Receives a run's results as they happen, on worker threads.</summary>
public interface IKeyClientObserver
{
    /// <summary>Whether <see cref="OnSending"/> is wanted (it costs a call per request).</summary>
    bool WantsSendNotices { get; }

    void OnSending(string clientId, string key);

    void OnReply(KeyReply reply);

    void OnFailure(KeyClientFailure failure);
}

/// <summary>What a run did.</summary>
public sealed class KeyClientSummary
{
    public KeyClientSummary(int sequences, long replies, int failures, TimeSpan elapsed)
    {
        Sequences = sequences;
        Replies = replies;
        Failures = failures;
        Elapsed = elapsed;
    }

    public int Sequences { get; }

    public long Replies { get; }

    public int Failures { get; }

    public TimeSpan Elapsed { get; }
}
