#if !ENGINE_NETSTANDARD
using System.Text;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Transport.Epoll;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>On an event loop's thread the log is written once per pass, before the loop sends anything more.</summary>
public sealed class DeferredLogTests
{
    [SkippableFact]
    public void LinesHandedOverOnALoopAreWrittenAtTheEndOfItsPassInOneGoAndInOrder()
    {
        Skip.IfNot(Libc.IsSupported, "the event loops run on Linux only");
        var path = Path.Combine(TempDirectory(), "pass.log");
        using var writer = new ConversationLogWriter(path);
        using var loop = new EventLoop("deferred log test", e => throw e);
        var seenDuringThePass = LoopTestSupport.OnLoop(loop, () =>
        {
            writer.Append(Encoding.ASCII.GetBytes("Client: 1 1\n"));
            writer.Append(Encoding.ASCII.GetBytes("Server: 1 Response for the key 1 : 45\n"));
            return (File.ReadAllText(path), loop.LogPending);
        });
        Assert.Equal(("", true), seenDuringThePass); // nothing written yet, and the loop knows it must wait
        Eventually(() => File.ReadAllText(path) == "Client: 1 1\nServer: 1 Response for the key 1 : 45\n", "the pass's lines in the file");
        Assert.False(LoopTestSupport.OnLoop(loop, () => loop.LogPending));
    }

    [Fact]
    public void OffALoopAppendWritesBeforeItReturns()
    {
        var path = Path.Combine(TempDirectory(), "direct.log");
        using var writer = new ConversationLogWriter(path);
        writer.Append(Encoding.ASCII.GetBytes("Client: 1 1\n"));
        Assert.Equal("Client: 1 1\n", File.ReadAllText(path));
    }
}
#endif
