using System;
using System.Buffers;
using System.Collections.Generic;

namespace KeyShell.Engine.Logging;

/// <summary>The .NET 8 build's scan: SearchValues finds the first byte to escape many bytes at a time.</summary>
public static partial class ConversationLine
{
    private static readonly SearchValues<byte> Plain = SearchValues.Create(PlainBytes());

    private static byte[] PlainBytes()
    {
        var plain = new List<byte>();
        for (var b = 0x20; b < 0x7F; b++)
        {
            if (b != '\\')
            {
                plain.Add((byte)b);
            }
        }

        return plain.ToArray();
    }

    private static int PlainPrefixLength(ReadOnlySpan<byte> bytes)
    {
        var first = bytes.IndexOfAnyExcept(Plain);
        return first < 0 ? bytes.Length : first;
    }
}
