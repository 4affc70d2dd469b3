using System.Text;
using FsCheck;
using FsCheck.Xunit;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Tests;

/// <summary>Properties of the framer, checked over generated streams and splits.</summary>
public class FramerPropertyTests
{
    /// <summary>Makes a protocol token (visible ASCII) of 1 to <paramref name="max"/> characters from any string.</summary>
    private static string Token(string? seed, int max)
    {
        var text = string.IsNullOrEmpty(seed) ? "k" : seed;
        var chars = text.Take(max).Select(c => (char)(0x21 + (c % 94))).ToArray();
        return new string(chars);
    }

    [Property(MaxTest = 300)]
    public bool AnySplitOfAValidStreamIntoReadsGivesTheSameRequests(NonEmptyArray<NonEmptyString> clients, NonEmptyArray<NonEmptyString> keys, PositiveInt[] cuts, bool crlf)
    {
        var requests = Enumerable.Range(0, Math.Max(clients.Get.Length, keys.Get.Length))
            .Select(i => Token(clients.Get[i % clients.Get.Length].Get, 64) + " " + Token(keys.Get[i % keys.Get.Length].Get, 100))
            .ToArray();
        var stream = Encoding.ASCII.GetBytes(string.Concat(requests.Select(r => r + (crlf ? "\r\n" : "\n"))));

        // The first read carries the first LF (before it, a whole request in a read is legacy by design).
        var first = Array.IndexOf(stream, (byte)'\n') + 1;
        var reads = new List<byte[]> { stream[..first] };
        var at = first;
        foreach (var cut in cuts)
        {
            if (at >= stream.Length)
            {
                break;
            }

            var size = Math.Min(1 + (cut.Get % 50), stream.Length - at);
            reads.Add(stream[at..(at + size)]);
            at += size;
        }

        if (at < stream.Length)
        {
            reads.Add(stream[at..]);
        }

        var framer = new RequestFramer(256);
        var framed = new List<string>();
        foreach (var read in reads)
        {
            var received = framer.Read(read);
            while (received.Next(out var request) is var kind && kind != FrameKind.None)
            {
                if (kind != FrameKind.Line)
                {
                    return false;
                }

                framed.Add(Encoding.ASCII.GetString(request));
            }
        }

        return framed.SequenceEqual(requests) && framer.PendingCount == 0;
    }

    [Property(MaxTest = 300)]
    public bool ArbitraryBytesNeverBreakTheFramerOrExceedTheLimit(NonEmptyArray<byte[]> reads)
    {
        var framer = new RequestFramer(64);
        foreach (var read in reads.Get.Where(r => r is not null))
        {
            foreach (var chunk in read.Chunk(2048))
            {
                var received = framer.Read(chunk);
                FrameKind kind;
                while ((kind = received.Next(out var request)) != FrameKind.None)
                {
                    if (kind == FrameKind.TooLong)
                    {
                        return true; // the connection closes here
                    }

                    if (request.Length > 64 || request.IndexOf((byte)'\n') >= 0)
                    {
                        return false;
                    }
                }

                if (framer.PendingCount > 64 + 1) // the limit, and the CR of a CRLF whose LF is still to come
                {
                    return false;
                }
            }
        }

        return true;
    }
}
