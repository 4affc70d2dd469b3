using System;

namespace KeyShell.Engine.Logging;

/// <summary>The netstandard2.0 build's scan (no SearchValues there): a byte at a time.</summary>
public static partial class ConversationLine
{
    private static int PlainPrefixLength(ReadOnlySpan<byte> bytes)
    {
        var length = 0;
        while (length < bytes.Length && bytes[length] >= 0x20 && bytes[length] < 0x7F && bytes[length] != (byte)'\\')
        {
            length++;
        }

        return length;
    }
}
