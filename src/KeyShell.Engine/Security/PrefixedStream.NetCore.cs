using System;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Security;

/// <summary>
/// The overloads SslStream calls on .NET 8, passed straight to the stream under it (Stream's defaults would go
/// through the Task-returning array overloads, a Task per read).
/// </summary>
internal sealed partial class PrefixedStream
{
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length > 0 && TakePrefix(out var first))
        {
            buffer.Span[0] = first;
            return new ValueTask<int>(1);
        }

        return _inner.ReadAsync(buffer, cancellationToken);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _inner.WriteAsync(buffer, cancellationToken);
}
