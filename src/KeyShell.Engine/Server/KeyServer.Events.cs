using System;
using System.Text;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Sessions;

namespace KeyShell.Engine.Server;

/// <summary>Raising the server's events: a subscriber's failure is reported, never the client's problem.</summary>
public sealed partial class KeyServer
{
    internal void RaiseRequestServed(ServerSession session, ReadOnlySpan<byte> request, int clientLength, ParseStatus status, byte[] reply)
    {
        var handler = RequestServed;
        if (handler is null)
        {
            return;
        }

        string? client = null;
        string key;
        if (status == ParseStatus.Ok)
        {
            client = Ascii(request.Slice(0, clientLength));
            key = Ascii(request.Slice(clientLength + 1));
        }
        else
        {
            using var escaped = new ByteBuffer(request.Length + 16);
            ConversationLine.WriteEscaped(escaped, request);
            key = Ascii(escaped.Span);
        }

        RaiseRequestServed(handler, session, new KeyServerEventArgs(session.Id, null, client, key, Encoding.UTF8.GetString(reply)));
    }

    /// <summary>Raises <see cref="RequestServed"/> for a request answered by the handler.</summary>
    internal void RaiseRequestServed(ServerSession session, KeyRequest request, string reply)
    {
        if (RequestServed is { } handler)
        {
            RaiseRequestServed(handler, session, new KeyServerEventArgs(session.Id, request.RemoteEndPoint, request.ClientId, request.Key, reply));
        }
    }

    private void RaiseRequestServed(EventHandler<KeyServerEventArgs> handler, ServerSession session, KeyServerEventArgs args)
    {
        try
        {
            handler(this, args);
        }
        catch (Exception e)
        {
            ReportError(session, e); // a subscriber's failure: the client is served all the same
        }
    }

    private static string Ascii(ReadOnlySpan<byte> bytes) => Encoding.ASCII.GetString(bytes.ToArray());

    private void RaiseError(long connectionId, string? remote, Exception error)
    {
        try
        {
            ErrorOccurred?.Invoke(this, new KeyServerEventArgs(connectionId, remote, error: error));
        }
        catch (Exception)
        {
            // A subscriber to errors failed: there is no one left to tell.
        }
    }
}
