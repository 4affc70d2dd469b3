using System;

namespace KeyShell.Engine.Protocol;

/// <summary>The outcome of parsing one request.</summary>
public enum ParseStatus
{
    Ok,
    /// <summary>Not of the form <c>&lt;client&gt; SP &lt;key&gt;</c>.</summary>
    Malformed,
    /// <summary>Of the right form, but the client token is longer than 64 characters.</summary>
    BadClient,
}

/// <summary>
/// Parses one request, <c>&lt;client&gt; SP &lt;key&gt;</c>, with its terminator already removed.
/// Both tokens are visible ASCII (0x21-0x7E); the client is 1 to 64 bytes; exactly one space between them.
/// Pure and allocation-free, so it is tested over plain byte arrays.
/// </summary>
public static class RequestParser
{
    public const int MaxClientLength = 64;

    /// <summary>Parses <paramref name="request"/>; on success the client is its first
    /// <paramref name="clientLength"/> bytes and the key is everything after the space.</summary>
    public static ParseStatus Parse(ReadOnlySpan<byte> request, out int clientLength)
    {
        clientLength = request.IndexOf((byte)' ');
        if (clientLength <= 0 || !IsToken(request.Slice(0, clientLength)))
        {
            return ParseStatus.Malformed;
        }

        var key = request.Slice(clientLength + 1);
        if (key.Length == 0 || !IsToken(key))
        {
            return ParseStatus.Malformed;
        }

        return clientLength > MaxClientLength ? ParseStatus.BadClient : ParseStatus.Ok;
    }

    /// <summary>True when every byte is visible ASCII: no space, no control byte, nothing above 0x7E.</summary>
    public static bool IsToken(ReadOnlySpan<byte> token)
    {
        foreach (var b in token)
        {
            if (b < 0x21 || b > 0x7E)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when <paramref name="token"/> is a valid client identifier.</summary>
    public static bool IsClientId(string? token)
    {
        if (string.IsNullOrEmpty(token) || token!.Length > MaxClientLength)
        {
            return false;
        }

        foreach (var c in token)
        {
            if (c < 0x21 || c > 0x7E)
            {
                return false;
            }
        }

        return true;
    }
}
