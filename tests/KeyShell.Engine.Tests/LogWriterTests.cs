using System.Text;
using KeyShell.Engine.Logging;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

public class LogWriterTests
{
    [Fact]
    public void ManyThreadsWriteWholeLinesInEachThreadsOrder()
    {
        var path = Path.Combine(TempDirectory(), "log.txt");
        const int threads = 8, lines = 5000;
        using (var writer = new ConversationLogWriter(path))
        {
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                for (var i = 0; i < lines; i++)
                {
                    writer.Append(Encoding.ASCII.GetBytes($"Client: t{t} {i}\nServer: t{t} reply {i}\n"));
                }
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => Assert.True(w.Join(Bound)));
        }

        AssertEachThreadsLinesInOrder(File.ReadAllLines(path), threads, lines);
    }

    [Fact]
    public void AppendReturnsWithTheLinesAlreadyInTheFile()
    {
        // No flush, no close: what another reader (or a crash) sees the moment Append returns.
        var path = Path.Combine(TempDirectory(), "log.txt");
        using var writer = new ConversationLogWriter(path);
        for (var i = 0; i < 200; i++)
        {
            writer.Append(Encoding.ASCII.GetBytes($"SYSTEM: {i}\n"));
            Assert.Equal($"SYSTEM: {i}", LogLines(path)[^1]);
        }

        Assert.Equal(200, LogLines(path).Length);
    }

    [Fact]
    public void TheFileStartsEmpty()
    {
        var path = Path.Combine(TempDirectory(), "log.txt");
        File.WriteAllText(path, "old contents\n");
        new ConversationLogWriter(path).Dispose();
        Assert.Equal(string.Empty, File.ReadAllText(path));
    }

    [Fact]
    public void ProviderWritesSystemLinesThroughMicrosoftExtensionsLogging()
    {
        var path = Path.Combine(TempDirectory(), "log.txt");
        using (var provider = new ConversationLoggerProvider(path, timestamps: false))
        {
            using var factory = new Microsoft.Extensions.Logging.LoggerFactory(new[] { provider });
            var logger = factory.CreateLogger("test");
            Microsoft.Extensions.Logging.LoggerExtensions.LogInformation(logger, "Server launched");
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(logger, "two\nlines");
        }

        Assert.Equal(new[] { "SYSTEM: Server launched", @"SYSTEM: two\x0Alines" }, File.ReadAllLines(path));
    }

    [SkippableFact]
    public void AFailedWriteIsCountedAndRaisedAndAThrowingHandlerDoesNotReachTheCaller()
    {
        Skip.IfNot(File.Exists("/dev/full"), "no /dev/full on this machine (a Linux device on which every write fails with ENOSPC)");
        using var writer = new ConversationLogWriter("/dev/full");
        var raised = new List<Exception>();
        writer.WriteFailed += e => raised.Add(e);
        writer.WriteFailed += _ => throw new InvalidOperationException("a subscriber that fails");
        var elapsed = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 100; i++)
        {
            writer.Append(Encoding.ASCII.GetBytes("SYSTEM: lost\n")); // never throws
        }

        Assert.Equal(100, writer.WriteErrors);
        Assert.All(raised, e => Assert.IsAssignableFrom<IOException>(e));
        Assert.InRange(raised.Count, 1, 1 + (int)elapsed.Elapsed.TotalSeconds); // the first, then at most once a second
    }

    internal static void AssertEachThreadsLinesInOrder(string[] written, int threads, int lines)
    {
        Assert.Equal(threads * lines * 2, written.Length);
        for (var t = 0; t < threads; t++)
        {
            var own = written.Where(l => l.Contains($" t{t} ")).ToArray();
            var expected = Enumerable.Range(0, lines).SelectMany(i => new[] { $"Client: t{t} {i}", $"Server: t{t} reply {i}" });
            Assert.Equal(expected, own);
        }
    }
}

public class LogWriterCloseTests
{
    [Fact]
    public async Task LinesAppendedWhileAndAfterTheWriterClosesAreDroppedWithoutHarm()
    {
        var path = Path.Combine(TempDirectory(), "log.txt");
        var writer = new ConversationLogWriter(path);
        writer.Append(Encoding.ASCII.GetBytes("SYSTEM: before\n"));
        using var go = new ManualResetEventSlim();
        var appenders = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            go.Wait();
            for (var i = 0; i < 20_000; i++)
            {
                writer.Append(Encoding.ASCII.GetBytes("SYSTEM: racing\n"));
            }
        })).ToArray();
        go.Set();
        writer.Dispose();
        await Task.WhenAll(appenders).WaitAsync(Bound);
        writer.Append(Encoding.ASCII.GetBytes("SYSTEM: after\n"));
        writer.Dispose(); // twice: harmless

        var lines = File.ReadAllLines(path);
        Assert.Equal("SYSTEM: before", lines[0]);
        Assert.All(lines.Skip(1), l => Assert.Equal("SYSTEM: racing", l));
    }
}
