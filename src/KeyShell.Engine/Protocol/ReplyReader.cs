using System;

namespace KeyShell.Engine.Protocol;

/// <summary>A reply that breaks the protocol: longer than the limit, or cut off by the end of the stream.</summary>
public sealed class ProtocolViolationException : Exception
{
    public ProtocolViolationException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// Splits a server's replies out of what a client receives, in either framing: line framing (a reply
/// ends with LF; CRLF accepted; a reply may arrive in pieces and several may arrive at once) or the
/// seed's (what one read returns is one reply). As the request framer does, it reads replies where they
/// lie and keeps only the start of a reply still waiting for its end.
/// </summary>
public sealed class ReplyReader : IDisposable
{
    public const int DefaultMaxReplyLength = 64 * 1024;

    private readonly bool _lineFramed;
    private readonly int _maxReplyLength;
    private readonly ByteBuffer _held = new(0);

    public ReplyReader(bool lineFramed, int maxReplyLength = DefaultMaxReplyLength)
    {
        _lineFramed = lineFramed;
        _maxReplyLength = maxReplyLength;
    }

    /// <summary>Bytes of a reply whose end has not come yet.</summary>
    public int PendingCount => _held.Length;

    /// <summary>The replies in <paramref name="received"/>, completing the one pending before it.</summary>
    public ReceivedReplies Read(ReadOnlySpan<byte> received) => new(this, received);

    /// <summary>The start of a reply whose end never came (the server closed after it), and forgets it.</summary>
    public byte[] TakeUnfinished()
    {
        var unfinished = _held.Span.ToArray();
        _held.Release();
        return unfinished;
    }

    /// <summary>Forgets a partial reply (its connection is gone) and gives back its buffer.</summary>
    public void Reset() => _held.Release();

    public void Dispose() => Reset();

    private bool Next(scoped ref ReadOnlySpan<byte> rest, out ReadOnlySpan<byte> reply)
    {
        if (!_lineFramed)
        {
            reply = rest;
            rest = default;
            return !reply.IsEmpty;
        }

        var lf = rest.IndexOf((byte)'\n');
        if (lf < 0)
        {
            if (_held.Length + rest.Length > _maxReplyLength)
            {
                throw new ProtocolViolationException($"The reply is longer than {_maxReplyLength} bytes.");
            }

            _held.Write(rest);
            rest = default;
            if (_held.Length == 0)
            {
                _held.Release();
            }

            reply = default;
            return false;
        }

        var line = rest.Slice(0, lf);
        rest = rest.Slice(lf + 1);
        if (_held.Length > 0)
        {
            if (_held.Length + line.Length > _maxReplyLength)
            {
                throw new ProtocolViolationException($"The reply is longer than {_maxReplyLength} bytes.");
            }

            _held.Write(line);
            line = _held.Span;
            _held.Clear(); // valid until the next call writes to the buffer again
        }

        reply = line.Length > 0 && line[line.Length - 1] == (byte)'\r' ? line.Slice(0, line.Length - 1) : line;
        return true;
    }

    /// <summary>The replies of one read; each is valid until the next call to <see cref="Next"/>.</summary>
    public ref struct ReceivedReplies
    {
        private readonly ReplyReader _reader;
        private ReadOnlySpan<byte> _rest;

        internal ReceivedReplies(ReplyReader reader, ReadOnlySpan<byte> received)
        {
            _reader = reader;
            _rest = received;
        }

        /// <summary>The next whole reply, without its terminator. Throws <see cref="ProtocolViolationException"/>
        /// when a reply grows past the limit.</summary>
        public bool Next(out ReadOnlySpan<byte> reply) => _reader.Next(ref _rest, out reply);
    }
}
