using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Security;

/// <summary>
/// A stream that gives back one byte already read from the stream under it, then reads on from there:
/// the server reads a connection's first byte to tell TLS from plain text, and SslStream must still see it.
/// Owns the stream under it. The Memory-based overloads, which netstandard2.0's Stream does not have, are in
/// PrefixedStream.NetCore.cs.
/// </summary>
internal sealed partial class PrefixedStream : Stream
{
    private readonly Stream _inner;
    private int _prefix; // the byte still to give back, or -1

    public PrefixedStream(Stream inner, byte first)
    {
        _inner = inner;
        _prefix = first;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => _inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (count > 0 && TakePrefix(out var first))
        {
            buffer[offset] = first;
            return 1;
        }

        return _inner.Read(buffer, offset, count);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        if (count > 0 && TakePrefix(out var first))
        {
            buffer[offset] = first;
            return Task.FromResult(1);
        }

        return _inner.ReadAsync(buffer, offset, count, cancellationToken);
    }

    public override void Write(byte[] buffer, int offset, int count) => _inner.Write(buffer, offset, count);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private bool TakePrefix(out byte first)
    {
        var prefix = _prefix;
        first = (byte)prefix;
        if (prefix < 0)
        {
            return false;
        }

        _prefix = -1;
        return true;
    }
}
