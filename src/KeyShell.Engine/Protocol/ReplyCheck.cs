using System;

namespace KeyShell.Engine.Protocol;

/// <summary>What a client makes of one reply to one of its requests.</summary>
public enum ReplyKind
{
    /// <summary>The protocol's answer to the key asked: <c>Response for the key K : &lt;value&gt;</c>.</summary>
    Response,
    /// <summary>An error reply (<c>Error: ...</c>): the protocol's way of saying no.</summary>
    ErrorReply,
    /// <summary>Not the protocol's reply to the key sent: another protocol (an HTTP server's reply), the
    /// answer to another key, a reply cut off by the end of the connection, or more lines than were asked for.</summary>
    UnexpectedReply,
}

/// <summary>
/// The one check of a reply against the request it answers, shared by the load worker, Invoke-KeyClient
/// and Test-KeyServer. Pure: bytes in, a verdict out, no allocation.
/// </summary>
public static class ReplyCheck
{
    /// <summary>
    /// Classifies <paramref name="reply"/> (one reply, without its line end) to a request for
    /// <paramref name="key"/>. A reply is one line: a line break inside it (the seed's framing, where a read
    /// is a reply) means more lines than were asked for. With <paramref name="checkForm"/> false (for servers
    /// whose handlers compute replies of their own form) any reply that is one line and does not start with
    /// <c>Error:</c> is a <see cref="ReplyKind.Response"/>, as keyload -k counts them.
    /// </summary>
    public static ReplyKind Classify(ReadOnlySpan<byte> reply, ReadOnlySpan<byte> key, bool checkForm = true)
    {
        reply = WithoutLineEnd(reply);
        if (reply.IndexOf((byte)'\n') >= 0 || reply.IndexOf((byte)'\r') >= 0)
        {
            return ReplyKind.UnexpectedReply;
        }

        if (reply.StartsWith("Error:"u8))
        {
            return ReplyKind.ErrorReply;
        }

        if (!checkForm)
        {
            return ReplyKind.Response;
        }

        // "Response for the key " key " : " value: the key exactly as sent, then any value.
        var prefix = "Response for the key "u8;
        return reply.StartsWith(prefix)
            && reply.Slice(prefix.Length).StartsWith(key)
            && reply.Slice(prefix.Length + key.Length).StartsWith(" : "u8)
            ? ReplyKind.Response
            : ReplyKind.UnexpectedReply;
    }

    /// <summary>As <see cref="Classify(ReadOnlySpan{byte}, ReadOnlySpan{byte}, bool)"/>, for text.</summary>
    public static ReplyKind Classify(string reply, string key, bool checkForm = true) =>
        Classify(System.Text.Encoding.UTF8.GetBytes(reply ?? throw new ArgumentNullException(nameof(reply))), System.Text.Encoding.UTF8.GetBytes(key ?? throw new ArgumentNullException(nameof(key))), checkForm);

    /// <summary>What the reply to a request for <paramref name="key"/> should have been, in words, for messages.</summary>
    public static string Expected(string key) => $"expected '{Replies.ForKey(key, "<value>")}' or 'Error: ...'";

    /// <summary>One trailing LF or CRLF is the reply's end, not a second line (a seed-framed reply read with it).</summary>
    internal static ReadOnlySpan<byte> WithoutLineEnd(ReadOnlySpan<byte> reply)
    {
        if (reply.Length > 0 && reply[reply.Length - 1] == (byte)'\n')
        {
            reply = reply.Slice(0, reply.Length - 1);
            if (reply.Length > 0 && reply[reply.Length - 1] == (byte)'\r')
            {
                reply = reply.Slice(0, reply.Length - 1);
            }
        }

        return reply;
    }
}
