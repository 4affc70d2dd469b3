using System;
using System.Buffers;

namespace KeyShell.Engine.Protocol;

/// <summary>
/// A growable byte buffer over pooled arrays, reused across reads so steady state allocates nothing.
/// Made with a capacity of 0 it holds no array until the first write, and <see cref="Release"/> gives
/// the array back: how a connection keeps bytes only while it has some to keep.
/// </summary>
public sealed class ByteBuffer : IDisposable
{
    private byte[] _array;

    public ByteBuffer(int initialCapacity = 256) =>
        _array = initialCapacity > 0 ? ArrayPool<byte>.Shared.Rent(initialCapacity) : System.Array.Empty<byte>();

    public int Length { get; private set; }

    public byte[] Array => _array;

    public ReadOnlySpan<byte> Span => _array.AsSpan(0, Length);

    public ArraySegment<byte> Segment => new(_array, 0, Length);

    public void Clear() => Length = 0;

    public void Write(ReadOnlySpan<byte> bytes)
    {
        Reserve(bytes.Length);
        bytes.CopyTo(_array.AsSpan(Length));
        Length += bytes.Length;
    }

    public void WriteByte(byte value)
    {
        Reserve(1);
        _array[Length++] = value;
    }

    /// <summary>Writes ASCII text (timestamps, fixed prefixes); every char must be below 0x80.</summary>
    public void WriteAscii(string text)
    {
        Reserve(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            _array[Length + i] = (byte)text[i];
        }

        Length += text.Length;
    }

    /// <summary>Drops the first <paramref name="count"/> bytes (sent ones), keeping the rest in order.</summary>
    public void Consume(int count)
    {
        if (count >= Length)
        {
            Length = 0;
            return;
        }

        Buffer.BlockCopy(_array, count, _array, 0, Length - count);
        Length -= count;
    }

    /// <summary>Empties the buffer and returns its array to the pool; the next write rents one again.</summary>
    public void Release()
    {
        var array = _array;
        _array = System.Array.Empty<byte>();
        Length = 0;
        if (array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    public void Dispose() => Release();

    private void Reserve(int more)
    {
        if (Length + more <= _array.Length)
        {
            return;
        }

        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(Math.Max(_array.Length * 2, Length + more), 64));
        Buffer.BlockCopy(_array, 0, bigger, 0, Length);
        if (_array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_array);
        }

        _array = bigger;
    }
}
