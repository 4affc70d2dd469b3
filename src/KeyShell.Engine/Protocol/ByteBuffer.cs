using System;
using System.Buffers;

namespace KeyShell.Engine.Protocol;

/// <summary>A growable byte buffer over pooled arrays, reused across reads so steady state allocates nothing.</summary>
public sealed class ByteBuffer : IDisposable
{
    private byte[] _array;

    public ByteBuffer(int initialCapacity = 256) => _array = ArrayPool<byte>.Shared.Rent(initialCapacity);

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

    public void Dispose()
    {
        var array = _array;
        _array = System.Array.Empty<byte>();
        Length = 0;
        if (array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    private void Reserve(int more)
    {
        if (Length + more <= _array.Length)
        {
            return;
        }

        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_array.Length * 2, Length + more));
        Buffer.BlockCopy(_array, 0, bigger, 0, Length);
        ArrayPool<byte>.Shared.Return(_array);
        _array = bigger;
    }
}
