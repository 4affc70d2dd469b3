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

        var written = File.ReadAllLines(path);
        Assert.Equal(threads * lines * 2, written.Length);
        for (var t = 0; t < threads; t++)
        {
            var own = written.Where(l => l.Contains($" t{t} ")).ToArray();
            var expected = Enumerable.Range(0, lines).SelectMany(i => new[] { $"Client: t{t} {i}", $"Server: t{t} reply {i}" });
            Assert.Equal(expected, own);
        }
    }

    [Fact]
    public void FlushReturnsWithEverythingInTheFile()
    {
        var path = Path.Combine(TempDirectory(), "log.txt");
        using var writer = new ConversationLogWriter(path);
        for (var i = 0; i < 1000; i++)
        {
            writer.Append(Encoding.ASCII.GetBytes($"SYSTEM: {i}\n"));
        }

        Assert.True(writer.Flush(Bound));
        using var read = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Assert.Equal(1000, new StreamReader(read).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
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

        var lines = File.ReadAllLines(path);
        Assert.Equal("SYSTEM: before", lines[0]);
        Assert.All(lines.Skip(1), l => Assert.Equal("SYSTEM: racing", l));
    }
}
