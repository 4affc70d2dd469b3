using System.Text;
using FsCheck.Xunit;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Tests;

public class RequestParserTests
{
    [Theory]
    [InlineData("3 7", 1)]
    [InlineData("client-42 9", 9)]
    [InlineData("a 10", 1)]
    public void ParsesClientAndKey(string request, int clientLength)
    {
        Assert.Equal(ParseStatus.Ok, RequestParser.Parse(Encoding.ASCII.GetBytes(request), out var length));
        Assert.Equal(clientLength, length);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("7")]
    [InlineData("1 2 3")]
    [InlineData(" 1 2")]
    [InlineData("1 2 ")]
    [InlineData("1  2")]
    [InlineData("1\t2")]
    [InlineData("1 \u0001")]
    [InlineData("1 2\r")]
    public void RejectsMalformedRequests(string request)
    {
        Assert.Equal(ParseStatus.Malformed, RequestParser.Parse(Encoding.ASCII.GetBytes(request), out _));
    }

    [Fact]
    public void RejectsNonAsciiAndNulBytes()
    {
        Assert.Equal(ParseStatus.Malformed, RequestParser.Parse(new byte[] { (byte)'1', (byte)' ', 0xC3, 0x28 }, out _));
        Assert.Equal(ParseStatus.Malformed, RequestParser.Parse(new byte[] { (byte)'1', (byte)' ', 0 }, out _));
    }

    [Fact]
    public void ClientIsAtMost64Characters()
    {
        Assert.Equal(ParseStatus.Ok, RequestParser.Parse(Encoding.ASCII.GetBytes(new string('c', 64) + " 1"), out _));
        Assert.Equal(ParseStatus.BadClient, RequestParser.Parse(Encoding.ASCII.GetBytes(new string('c', 65) + " 1"), out _));
    }
}

public class KeyMapTests
{
    [Fact]
    public void SeedMapAnswersAsTheSeed()
    {
        var expected = new[] { 12, 45, 78, 23, 56, 89, 34, 67, 90, 10 };
        for (var key = 0; key < 10; key++)
        {
            var reply = KeyMap.Seed.ReplyFor(Encoding.ASCII.GetBytes(key.ToString()), out var found);
            Assert.True(found);
            Assert.Equal($"Response for the key {key} : {expected[key]}", Encoding.ASCII.GetString(reply));
        }
    }

    [Theory]
    [InlineData("10")]
    [InlineData("-1")]
    [InlineData("x")]
    [InlineData("99999999999999999999999")]
    public void SeedMapRejectsOtherKeysWithTheSeedsText(string key)
    {
        var reply = KeyMap.Seed.ReplyFor(Encoding.ASCII.GetBytes(key), out var found);
        Assert.False(found);
        Assert.Equal("Error: enter a number between 0 and 9", Encoding.ASCII.GetString(reply));
    }

    [Fact]
    public void CustomMapTakesAnyTokenAndFindsEveryKey()
    {
        var values = Enumerable.Range(0, 500).ToDictionary(i => "key-" + i, i => "v" + i);
        var map = new KeyMap(values);
        foreach (var (key, value) in values)
        {
            var reply = map.ReplyFor(Encoding.ASCII.GetBytes(key), out var found);
            Assert.True(found);
            Assert.Equal($"Response for the key {key} : {value}", Encoding.ASCII.GetString(reply));
        }

        Assert.False(map.ReplyFor("key-500"u8, out _) is { Length: 0 });
        map.ReplyFor("key-500"u8, out var missing);
        Assert.False(missing);
    }

    [Theory]
    [InlineData("two words")]
    [InlineData("")]
    [InlineData("tab\tkey")]
    public void CustomMapRejectsKeysThatAreNotTokens(string key)
    {
        Assert.Throws<ArgumentException>(() => new KeyMap(new Dictionary<string, string> { [key] = "1" }));
    }
}

public class RequestFramerTests
{
    private static List<(FrameKind Kind, string Text)> Feed(RequestFramer framer, params string[] reads)
    {
        var frames = new List<(FrameKind, string)>();
        foreach (var read in reads)
        {
            var received = framer.Read(Encoding.ASCII.GetBytes(read));
            FrameKind kind;
            while ((kind = received.Next(out var request)) != FrameKind.None)
            {
                frames.Add((kind, Encoding.ASCII.GetString(request)));
                if (kind == FrameKind.TooLong)
                {
                    return frames;
                }
            }
        }

        return frames;
    }

    [Fact]
    public void OneLinePerRequest()
    {
        Assert.Equal(new[] { (FrameKind.Line, "1 2") }, Feed(new RequestFramer(1024), "1 2\n"));
    }

    [Fact]
    public void TwoRequestsInOneReadAreTwoRequests()
    {
        Assert.Equal(new[] { (FrameKind.Line, "1 2"), (FrameKind.Line, "3 4") }, Feed(new RequestFramer(1024), "1 2\n3 4\n"));
    }

    [Fact]
    public void ARequestSplitAcrossReadsIsOneRequest()
    {
        Assert.Equal(new[] { (FrameKind.Line, "12 5") }, Feed(new RequestFramer(1024), "1", "2 ", "5\n"));
    }

    [Fact]
    public void CrLfIsAccepted()
    {
        Assert.Equal(new[] { (FrameKind.Line, "1 2"), (FrameKind.Line, "3 4") }, Feed(new RequestFramer(1024), "1 2\r\n3 4\r", "\n"));
    }

    [Fact]
    public void AReadWithoutTerminatorHoldingARequestIsLegacy()
    {
        var framer = new RequestFramer(1024);
        Assert.Equal(new[] { (FrameKind.Legacy, "3 7"), (FrameKind.Legacy, "3 8") }, Feed(framer, "3 7", "3 8"));
        Assert.False(framer.IsLineFramed);
    }

    [Fact]
    public void AnIncompleteReadWaitsForMore()
    {
        Assert.Equal(new[] { (FrameKind.Line, "3 7") }, Feed(new RequestFramer(1024), "3", " ", "7\n"));
    }

    [Fact]
    public void OnceALineIsSeenTheConnectionStaysLineFramed()
    {
        var framer = new RequestFramer(1024);
        Assert.Equal(new[] { (FrameKind.Line, "1 2") }, Feed(framer, "1 2\n3 4"));
        Assert.True(framer.IsLineFramed);
        Assert.Equal(new[] { (FrameKind.Line, "3 45") }, Feed(framer, "5\n"));
    }

    [Fact]
    public void BeforeTheFirstLfAReadEndingOnAWholeRequestIsLegacy()
    {
        var framer = new RequestFramer(1024);
        Assert.Equal(new[] { (FrameKind.Legacy, "c0 0") }, Feed(framer, "c0 0"));
        Assert.False(framer.IsLineFramed);
    }

    [Fact]
    public void ALineLongerThanTheLimitIsTooLong()
    {
        Assert.Equal(FrameKind.TooLong, Feed(new RequestFramer(16), new string('a', 17) + "\n").Single().Kind);
    }

    [Fact]
    public void PendingBytesPastTheLimitAreTooLongWithoutWaitingForTheEnd()
    {
        var framer = new RequestFramer(16);
        var frames = Feed(framer, new string('a', 10), new string('a', 10));
        Assert.Equal(FrameKind.TooLong, frames.Single().Kind);
    }

    [Fact]
    public void ALineOfExactlyTheLimitIsAccepted()
    {
        var request = "1 " + new string('k', 14);
        Assert.Equal(new[] { (FrameKind.Line, request) }, Feed(new RequestFramer(16), request + "\r\n"));
    }

    [Fact]
    public void ManyPipelinedRequestsAcrossArbitrarySplitsComeOutWhole()
    {
        var stream = string.Concat(Enumerable.Range(0, 2000).Select(i => $"c{i % 7} {i % 10}\n"));
        var random = new Random(12345);
        for (var round = 0; round < 50; round++)
        {
            var framer = new RequestFramer(64);
            // The first read carries the first LF: before any LF, a read that ends on a whole request is
            // legacy by definition (DESIGN §2), which the next test pins down.
            var reads = new List<string> { stream.Substring(0, stream.IndexOf('\n') + 1) };
            for (var at = reads[0].Length; at < stream.Length;)
            {
                var size = Math.Min(random.Next(1, 40), stream.Length - at);
                reads.Add(stream.Substring(at, size));
                at += size;
            }

            var frames = Feed(framer, reads.ToArray());
            Assert.Equal(2000, frames.Count);
            Assert.All(frames, f => Assert.Equal(FrameKind.Line, f.Kind));
            Assert.Equal(Enumerable.Range(0, 2000).Select(i => $"c{i % 7} {i % 10}"), frames.Select(f => f.Text));
        }
    }
}

/// <summary>A reply made one line: upstream mode does it to bytes as they came, a handler's path to text.</summary>
public class OneLineReplyTests
{
    [Property(MaxTest = 500)]
    public bool BytesBecomeOneLineAsTheirTextDoes(byte[] bytes)
    {
        var text = Encoding.Latin1.GetString(bytes); // every byte one char, and back
        return Replies.OneLine(bytes).SequenceEqual(Encoding.Latin1.GetBytes(Replies.OneLine(text)));
    }

    [Theory]
    [InlineData("a\r\nb", "a b")]
    [InlineData("a\n\rb", "a  b")]
    [InlineData("\r\r\n", "  ")]
    [InlineData("plain", "plain")]
    public void EachLineBreakIsOneSpace(string reply, string expected) =>
        Assert.Equal(expected, Encoding.ASCII.GetString(Replies.OneLine(Encoding.ASCII.GetBytes(reply))));
}
