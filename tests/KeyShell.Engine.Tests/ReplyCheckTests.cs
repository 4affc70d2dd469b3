using System.Text;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Tests;

public class ReplyCheckTests
{
    [Theory]
    [InlineData("Response for the key 7 : 67", "7")]
    [InlineData("Response for the key red : #ff0000", "red")]
    [InlineData("Response for the key a : ", "a")]            // an empty value is still the protocol's form
    [InlineData("Response for the key 7 : 67\n", "7")]         // a seed-framed reply read with its line end
    [InlineData("Response for the key 7 : 67\r\n", "7")]
    [InlineData("Response for the key k : a : b", "k")]       // the value may hold the separator
    public void TheProtocolsAnswerToTheKeyIsAResponse(string reply, string key)
    {
        Assert.Equal(ReplyKind.Response, ReplyCheck.Classify(reply, key));
    }

    [Theory]
    [InlineData("Error: enter a number between 0 and 9")]
    [InlineData("Error: unknown key")]
    [InlineData("Error:")]
    public void ErrorRepliesAreErrorReplies(string reply)
    {
        Assert.Equal(ReplyKind.ErrorReply, ReplyCheck.Classify(reply, "7"));
        Assert.Equal(ReplyKind.ErrorReply, ReplyCheck.Classify(reply, "7", checkForm: false));
    }

    [Theory]
    [InlineData("HTTP/1.1 400 Bad Request")]                  // another protocol
    [InlineData("Response for the key 8 : 90")]               // another key's answer
    [InlineData("Response for the key 77 : 90")]              // a key that only starts like it
    [InlineData("Response for the key 7: 67")]                // not the separator
    [InlineData("Response for the key 7")]                    // cut off
    [InlineData("Response for the key ")]
    [InlineData("")]
    [InlineData("response for the key 7 : 67")]               // the form is exact
    [InlineData("error: no")]
    [InlineData(" Error: leading space")]
    [InlineData("Response for the key 7 : 67\nResponse for the key 8 : 90")] // extra lines (the seed's framing)
    [InlineData("Response for the key 7 : 6\r7")]
    public void AnythingElseIsUnexpected(string reply)
    {
        Assert.Equal(ReplyKind.UnexpectedReply, ReplyCheck.Classify(reply, "7"));
    }

    [Theory]
    [InlineData("HTTP/1.1 400 Bad Request", ReplyKind.Response)]
    [InlineData("0 eborp", ReplyKind.Response)]               // openssl s_server -rev
    [InlineData("Error: x", ReplyKind.ErrorReply)]
    [InlineData("two\nlines", ReplyKind.UnexpectedReply)]     // still one line per request
    public void WithoutTheFormCheckAnyOneLineReplyThatIsNotAnErrorIsAResponse(string reply, ReplyKind kind)
    {
        Assert.Equal(kind, ReplyCheck.Classify(reply, "0", checkForm: false));
    }

    [Fact]
    public void ChecksBytesWithoutAllocating()
    {
        var reply = Encoding.ASCII.GetBytes("Response for the key 7 : 67");
        var key = Encoding.ASCII.GetBytes("7");
        ReplyCheck.Classify(reply, key);
        var responses = 0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++)
        {
            responses += ReplyCheck.Classify(reply, key) == ReplyKind.Response ? 1 : 0;
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(1_000, responses);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void SaysWhatWasExpected()
    {
        Assert.Equal("expected 'Response for the key red : <value>' or 'Error: ...'", ReplyCheck.Expected("red"));
    }
}
