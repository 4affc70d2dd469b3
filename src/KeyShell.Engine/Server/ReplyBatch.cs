#if NET
using System;
using System.Collections.Generic;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Server.Linux;
using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Server;

/// <summary>
/// What an event loop's connections answered during one wake-up (one epoll_wait): their log lines, in
/// the order they were answered, and the connections whose replies wait to be sent. At the end of the
/// wake-up the lines go to the log in one hand-off, then the replies go out: a reply a client has seen is
/// always in the log, as on the async path, but the log is handed one batch per wake-up instead of one per
/// read (with 64 busy connections, about 26 reads share one hand-off). Used only on the loop's thread.
/// </summary>
internal sealed class ReplyBatch
{
    private readonly EventLoop _loop;
    private readonly ILogger? _logger;
    private readonly ByteBuffer? _lines;
    private readonly List<ServerConnection> _waiting = new();

    public ReplyBatch(EventLoop loop, ILogger? logger)
    {
        _loop = loop;
        _logger = logger;
        _lines = logger is null ? null : new ByteBuffer(16 * 1024);
    }

    /// <summary>Adds a read's log lines, when called on the loop's thread; false elsewhere (log them directly).</summary>
    public bool TryAddLines(ReadOnlySpan<byte> lines)
    {
        if (_lines is null || !_loop.IsCurrentThread)
        {
            return false;
        }

        _lines.Write(lines);
        return true;
    }

    /// <summary>Sends <paramref name="connection"/>'s replies once this wake-up's lines are logged.</summary>
    public void SendAfterLogging(ServerConnection connection) => _waiting.Add(connection);

    /// <summary>Logs the wake-up's lines, then sends the waiting replies. Called by the loop after each wake-up.</summary>
    public void Complete()
    {
        try
        {
            LogLines();
        }
        finally
        {
            SendWaiting(); // a logging provider's failure (reported by the loop) must not strand the replies
            LogLines();    // connections that closed after their last reply said goodbye: not to wait for traffic
        }
    }

    private void LogLines()
    {
        if (_lines is not { Length: > 0 })
        {
            return;
        }

        try
        {
            _logger!.Log(LogLevel.Information, KeyServer.ConversationEvent, new ConversationBatch(_lines.Segment), null, ConversationBatch.Format);
        }
        finally
        {
            _lines.Clear();
        }
    }

    private void SendWaiting()
    {
        foreach (var connection in _waiting)
        {
            connection.SendAnswers(); // never throws: a failure closes that connection only
        }

        _waiting.Clear();
    }
}
#endif
