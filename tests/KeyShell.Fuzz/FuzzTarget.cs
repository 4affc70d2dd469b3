using System;
using System.Text;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;

namespace KeyShell.Fuzz;

/// <summary>
/// The fuzzed path, shared by the afl++ harness (Program.cs) and the xunit replay of the corpus and of
/// every crash found (tests/KeyShell.Fuzz/regressions). The first byte chooses how the rest is split into
/// reads; every request framed is parsed, answered from the seed's map, written as log lines, and read
/// back. Any broken invariant throws, which afl++ records as a crash.
/// </summary>
public static class FuzzTarget
{
    private const int MaxLineLength = 64;

    public static void Run(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        var readSize = 1 + (data[0] % 32);
        var input = data.Slice(1);
        var framer = new RequestFramer(MaxLineLength);
        using var log = new ByteBuffer();
        for (var at = 0; at < input.Length; at += readSize)
        {
            var received = framer.Read(input.Slice(at, Math.Min(readSize, input.Length - at)));
            FrameKind kind;
            while ((kind = received.Next(out var request)) != FrameKind.None)
            {
                if (kind == FrameKind.TooLong)
                {
                    return; // the server answers and closes here
                }

                Check(request.Length <= MaxLineLength, "a frame longer than the limit");
                Check(request.IndexOf((byte)'\n') < 0, "a frame holding an LF");
                Answer(request, log);
            }

            // A request of the limit may wait for the LF of its CRLF: the limit and one byte, never more.
            Check(framer.PendingCount <= MaxLineLength + 1, "more pending than the limit");
        }
    }

    private static void Answer(ReadOnlySpan<byte> request, ByteBuffer log)
    {
        var status = RequestParser.Parse(request, out var clientLength);
        var client = status == ParseStatus.Ok ? request.Slice(0, clientLength) : default;
        var reply = status == ParseStatus.Ok ? KeyMap.Seed.ReplyFor(request.Slice(clientLength + 1), out _) : Encoding.ASCII.GetBytes(Replies.Malformed);

        log.Clear();
        ConversationLine.WriteRequest(log, string.Empty, request);
        ConversationLine.WriteReply(log, string.Empty, client, reply);
        var text = Encoding.ASCII.GetString(log.Span.ToArray());
        Check(text.IndexOf('\r') < 0, "a CR in the log");
        var lines = text.Split('\n');
        Check(lines.Length == 3 && lines[2].Length == 0, "a request that is not exactly two log lines");

        var asked = ConversationEntry.Parse(lines[0], 1);
        var answered = ConversationEntry.Parse(lines[1], 2);
        Check(asked is { Source: "Client" } && answered is { Source: "Server" }, "a log line that does not read back");
        Check(ConversationLine.Unescape(asked!.Text).AsSpan().SequenceEqual(request), "a logged request that does not unescape to the bytes received");
        Check((asked.ClientId is null) == (status != ParseStatus.Ok), "the log reader and the server disagree on a request's validity");
        Check((answered!.ClientId is null) == (status != ParseStatus.Ok), "a reply logged for the wrong client");
        Check(status != ParseStatus.Ok || (asked.ClientId == Encoding.ASCII.GetString(client.ToArray()) && answered.ClientId == asked.ClientId), "a client id that does not read back");

        // A fault applied to the request, in its reply's place, reads back as that request's fault.
        if (status == ParseStatus.Ok)
        {
            log.Clear();
            var type = (Engine.Faults.FaultType)(request.Length % 7);
            ConversationLine.WriteFault(log, string.Empty, type, client, request.Slice(clientLength + 1));
            var faultLine = Encoding.ASCII.GetString(log.Span.ToArray()).TrimEnd('\n');
            Check(ConversationEntry.Parse(faultLine, 3) is ConversationFault fault && fault.FaultType == type &&
                  fault.ClientId == asked.ClientId && fault.Key == asked.Key, "a fault line that does not read back as its request");
        }
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException("Fuzz invariant broken: " + what);
        }
    }
}
