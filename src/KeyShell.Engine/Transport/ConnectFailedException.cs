using System;

namespace KeyShell.Engine.Transport;

/// <summary>A client's connection could not be opened; the inner exception says why.</summary>
internal sealed class ConnectFailedException : Exception
{
    public ConnectFailedException(Exception inner)
        : base(inner.Message, inner)
    {
    }
}
