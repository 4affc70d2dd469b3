using System;

namespace KeyShell.Engine.Transport;

/// <summary>
/// After a reply that ends the connection (a request too long), both drivers stop sending and read and
/// discard what the peer still sends, for a moment and up to a bound, so that closing with unread data
/// does not reset the connection before the peer has read the reply.
/// </summary>
internal static class Drain
{
    public static readonly TimeSpan Time = TimeSpan.FromSeconds(1);

    public const int Limit = 4 * 1024 * 1024;
}
