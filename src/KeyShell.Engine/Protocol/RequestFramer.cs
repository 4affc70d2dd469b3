using System;

namespace KeyShell.Engine.Protocol;

/// <summary>What <see cref="RequestFramer.TryReadFrame"/> found.</summary>
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
/// Splits one connection's byte stream into requests. The caller receives into <see cref="ReceiveBuffer"/>
/// at <see cref="ReceiveOffset"/>, calls <see cref="Commit"/>, then <see cref="TryReadFrame"/> until it
/// returns <see cref="FrameKind.None"/>. Framing is decided per connection (DESIGN §2): a read that ends
/// without LF and whose pending bytes parse as a whole request is answered in legacy framing, until the
/// connection sends its first LF; from then on it is line framed. Never holds more than the line limit
/// of an incomplete request.
/// </summary>
public sealed class RequestFramer
{
    private const byte LF = (byte)'\n';
    private const byte CR = (byte)'\r';

    private readonly byte[] _buffer;
    private readonly int _maxLineLength;
    private int _start;   // first byte not yet framed
    private int _scanned; // bytes from _start already searched for LF
    private int _filled;  // end of received data
    private bool _ended;  // the peer half-closed: no terminator will come

    public RequestFramer(int maxLineLength, byte[]? buffer = null)
    {
        if (maxLineLength < 3)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLineLength), "The line limit must allow at least 'c k'.");
        }

        _maxLineLength = maxLineLength;
        _buffer = buffer ?? new byte[BufferSizeFor(maxLineLength)];
        if (_buffer.Length < maxLineLength + 2)
        {
            throw new ArgumentException("The buffer must hold a request of the line limit and its CRLF.", nameof(buffer));
        }
    }

    /// <summary>The smallest buffer that holds a whole request of the limit, with room for pipelined requests.</summary>
    public static int BufferSizeFor(int maxLineLength) => Math.Max(maxLineLength + 2, 2048);

    /// <summary>True once the connection has sent an LF: it stays line framed.</summary>
    public bool IsLineFramed { get; private set; }

    public byte[] ReceiveBuffer => _buffer;

    public int ReceiveOffset => _filled;

    public int ReceiveCount => _buffer.Length - _filled;

    /// <summary>Bytes received but not yet part of a complete request.</summary>
    public int PendingCount => _filled - _start;

    /// <summary>The peer will send nothing more (half-close): pending bytes become one last request.</summary>
    public void EndOfStream() => _ended = true;

    /// <summary>Moves pending bytes to the front, so the next receive has the most room.</summary>
    public void Compact()
    {
        if (_start == 0)
        {
            return;
        }

        var pending = _filled - _start;
        if (pending > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, pending);
        }

        _scanned -= _start;
        _filled = pending;
        _start = 0;
    }

    /// <summary>Records <paramref name="count"/> bytes received at <see cref="ReceiveOffset"/>.</summary>
    public void Commit(int count)
    {
        if (count < 0 || count > ReceiveCount)
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _filled += count;
    }

    /// <summary>Copies <paramref name="data"/> in as one read (for tests and callers without sockets).</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        Compact();
        data.CopyTo(_buffer.AsSpan(_filled));
        Commit(data.Length);
    }

    /// <summary>Returns the next request, without its terminator, valid until the next receive.</summary>
    public FrameKind TryReadFrame(out ReadOnlySpan<byte> request)
    {
        var unscanned = _buffer.AsSpan(_scanned, _filled - _scanned);
        var lf = unscanned.IndexOf(LF);
        if (lf >= 0)
        {
            var end = _scanned + lf;
            var next = end + 1;
            if (end > _start && _buffer[end - 1] == CR)
            {
                end--;
            }

            IsLineFramed = true;
            request = _buffer.AsSpan(_start, end - _start);
            _start = _scanned = next;
            return request.Length > _maxLineLength ? FrameKind.TooLong : FrameKind.Line;
        }

        _scanned = _filled;
        request = _buffer.AsSpan(_start, _filled - _start);
        if (request.Length > _maxLineLength)
        {
            return FrameKind.TooLong;
        }

        if (request.Length > 0 && (_ended || (!IsLineFramed && RequestParser.Parse(request, out _) != ParseStatus.Malformed)))
        {
            // At the end of the stream, whatever is pending is the last request, in the connection's framing.
            _start = _scanned = _filled;
            return _ended && IsLineFramed ? FrameKind.Line : FrameKind.Legacy;
        }

        request = default;
        return FrameKind.None;
    }
}
