using System;

namespace KeyShell.Engine.Protocol;

/// <summary>What <see cref="RequestFramer.Frames.Next"/> found.</summary>
public enum FrameKind
{
    /// <summary>No complete request yet: receive more bytes.</summary>
    None,
    /// <summary>A request ended by LF (or CRLF); its reply ends with LF.</summary>
    Line,
    /// <summary>The seed's framing: a read with no terminator that holds one complete request; the reply has no terminator.</summary>
    Legacy,
    /// <summary>More than the line limit without a terminator: reply with an error and close.</summary>
    TooLong,
}

/// <summary>
/// Splits one connection's byte stream into requests, over the bytes of each read where they lie (the
/// driver's receive buffer): <c>var frames = framer.Read(received); while (frames.Next(out var request)
/// != FrameKind.None) ...</c>. Framing is decided per connection (DESIGN §2): a read that ends without
/// LF and whose pending bytes parse as a whole request is answered in legacy framing, until the
/// connection sends its first LF; from then on it is line framed. Only the start of a request still
/// waiting for its end is copied and kept, never more than the line limit of it; between requests the
/// framer holds no buffer at all.
/// </summary>
public sealed class RequestFramer : IDisposable
{
    private const byte LF = (byte)'\n';
    private const byte CR = (byte)'\r';

    private readonly int _maxLineLength;
    private readonly ByteBuffer _held = new(0);

    public RequestFramer(int maxLineLength)
    {
        if (maxLineLength < 3)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLineLength), "The line limit must allow at least 'c k'.");
        }

        _maxLineLength = maxLineLength;
    }

    /// <summary>True once the connection has sent an LF: it stays line framed.</summary>
    public bool IsLineFramed { get; private set; }

    /// <summary>Bytes received but not yet part of a complete request.</summary>
    public int PendingCount => _held.Length;

    /// <summary>The requests in <paramref name="received"/> (with what was pending before it).</summary>
    public Frames Read(ReadOnlySpan<byte> received) => new(this, received, ended: false);

    /// <summary>The peer will send nothing more (half-close): pending bytes become one last request.</summary>
    public Frames EndOfStream() => new(this, default, ended: true);

    /// <summary>Gives back the buffer of a pending request (the connection is closing).</summary>
    public void Dispose() => _held.Release();

    private FrameKind Next(scoped ref ReadOnlySpan<byte> rest, bool ended, out ReadOnlySpan<byte> request)
    {
        var lf = rest.IndexOf(LF);
        if (lf >= 0)
        {
            IsLineFramed = true;
            var line = rest.Slice(0, lf);
            rest = rest.Slice(lf + 1);
            if (_held.Length > 0)
            {
                if (_held.Length + line.Length > _maxLineLength + 1)
                {
                    return TooLong(line, out request);
                }

                _held.Write(line);
                line = _held.Span;
                _held.Clear(); // the span stays valid until the next call writes to the buffer again
            }

            request = line.Length > 0 && line[line.Length - 1] == CR ? line.Slice(0, line.Length - 1) : line;
            return request.Length > _maxLineLength ? FrameKind.TooLong : FrameKind.Line;
        }

        if (!rest.IsEmpty)
        {
            // The seed's client: a whole request per read, no terminator, nothing pending. Answered in place.
            if (_held.Length == 0 && !ended && !IsLineFramed && rest.Length <= _maxLineLength && IsRequest(rest))
            {
                request = rest;
                rest = default;
                return FrameKind.Legacy;
            }

            if (_held.Length + rest.Length > _maxLineLength + 1)
            {
                var tooLong = TooLong(rest, out request);
                rest = default;
                return tooLong;
            }

            _held.Write(rest);
            rest = default;
        }

        var held = _held.Span;
        if (held.Length > _maxLineLength && !(held.Length == _maxLineLength + 1 && held[held.Length - 1] == CR))
        {
            request = held;
            return FrameKind.TooLong;
        }

        if (held.Length > 0 && (ended || (!IsLineFramed && IsRequest(held))))
        {
            // At the end of the stream, whatever is pending is the last request, in the connection's framing.
            request = held;
            _held.Clear();
            return ended && IsLineFramed ? FrameKind.Line : FrameKind.Legacy;
        }

        if (held.Length == 0)
        {
            _held.Release(); // between requests a connection holds no buffer
        }

        request = default;
        return FrameKind.None;
    }

    /// <summary>A request past the limit: its head (what is pending, then up to the limit of the rest) is reported.</summary>
    private FrameKind TooLong(ReadOnlySpan<byte> more, out ReadOnlySpan<byte> request)
    {
        var room = Math.Max(0, _maxLineLength + 1 - _held.Length);
        _held.Write(more.Slice(0, Math.Min(room, more.Length)));
        request = _held.Span;
        return FrameKind.TooLong;
    }

    private static bool IsRequest(ReadOnlySpan<byte> bytes) => RequestParser.Parse(bytes, out _) != ParseStatus.Malformed;

    /// <summary>The requests of one read; each is valid until the next call to <see cref="Next"/>.</summary>
    public ref struct Frames
    {
        private readonly RequestFramer _framer;
        private readonly bool _ended;
        private ReadOnlySpan<byte> _rest;

        internal Frames(RequestFramer framer, ReadOnlySpan<byte> received, bool ended)
        {
            _framer = framer;
            _rest = received;
            _ended = ended;
        }

        /// <summary>The next request, without its terminator; <see cref="FrameKind.None"/> when the read is used up.</summary>
        public FrameKind Next(out ReadOnlySpan<byte> request) => _framer.Next(ref _rest, _ended, out request);
    }
}
