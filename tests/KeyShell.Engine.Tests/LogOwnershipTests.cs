using System.Runtime.InteropServices;
using System.Text;
using KeyShell.Engine.Logging;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>
/// A log file has one owner: in this process, every writer that names a file shares its one open file;
/// another process is kept out. "Another process" is played here by a second open of the file that goes
/// past this process's table of logs (<see cref="LogFile.Open"/>): on Linux its lock belongs to that open
/// file, not to the process, and on Windows share modes apply to every handle, so it is refused exactly as
/// another process's open would be. (Pester's Log.Tests.ps1 does it with a real second process.)
/// </summary>
public class LogOwnershipTests
{
    private static readonly bool OtherProcessesAreKeptOut = RuntimeInformation.IsOSPlatform(OSPlatform.Linux) || RuntimeInformation.IsOSPlatform(OSPlatform.Windows);

    private static byte[] Line(string text) => Encoding.ASCII.GetBytes(text + "\n");

    [Fact]
    public void TheFirstOwnerEmptiesTheFileALaterOneJoinsAndTheLastToLeaveClosesIt()
    {
        var path = Path.Combine(TempDirectory(), "log.txt");
        File.WriteAllText(path, "SYSTEM: an old run\n");
        var first = new ConversationLogWriter(path);
        first.Append(Line("SYSTEM: first"));
        var second = new ConversationLogWriter(path);
        second.Append(Line("SYSTEM: second"));
        first.Dispose();
        first.Append(Line("SYSTEM: first, after it let go"));
        second.Append(Line("SYSTEM: second, alone"));
        Assert.Equal(new[] { "SYSTEM: first", "SYSTEM: second", "SYSTEM: second, alone" }, LogLines(path));
        second.Dispose();

        // Nobody owns it now: the next owner starts a new log.
        using var third = new ConversationLogWriter(path);
        Assert.Empty(LogLines(path));
    }

    [Fact]
    public void OwnersOnManyThreadsKeepEveryLineWholeAndEachThreadsOrder()
    {
        var path = Path.Combine(TempDirectory(), "log.txt");
        const int threads = 8, lines = 3000;
        var writers = Enumerable.Range(0, threads / 2).Select(_ => new ConversationLogWriter(path)).ToArray();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var writer = writers[t / 2];
            for (var i = 0; i < lines; i++)
            {
                writer.Append(Encoding.ASCII.GetBytes($"Client: t{t} {i}\nServer: t{t} reply {i}\n"));
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => Assert.True(w.Join(Bound)));
        foreach (var writer in writers)
        {
            writer.Dispose();
        }

        LogWriterTests.AssertEachThreadsLinesInOrder(File.ReadAllLines(path), threads, lines);
    }

    [SkippableFact]
    public void AnotherOpenOfAFileInUseIsRefusedAndChangesNothingInIt()
    {
        Skip.IfNot(OtherProcessesAreKeptOut, "only Linux and Windows keep other processes out of a log in use");
        var path = Path.Combine(TempDirectory(), "log.txt");
        using (var owner = new ConversationLogWriter(path))
        {
            owner.Append(Line("Client: 1 1"));
            var before = File.ReadAllBytes(path);
            var refused = Assert.Throws<LogPathInUseException>(() => LogFile.Open(owner.Path, empty: true));
            Assert.Equal(owner.Path, refused.Path);
            Assert.Contains(owner.Path, refused.Message);
            Assert.Equal(before, File.ReadAllBytes(path));
            owner.Append(Line("Server: 1 " + Reply(1)));
        }

        // Let go: another process may have it now.
        using var next = LogFile.Open(Path.GetFullPath(path), empty: false);
        Assert.Equal(new[] { "Client: 1 1", "Server: 1 " + Reply(1) }, LogLines(path));
    }

    [SkippableFact]
    public void AnOwnerHoldsTheFileAgainstOthersWhileItIsBeingRead()
    {
        // Readers (Get-Content, Test-KeyConversation, in this process or another) never stand in a writer's way, nor it in theirs.
        Skip.IfNot(OtherProcessesAreKeptOut, "only Linux and Windows keep other processes out of a log in use");
        var path = Path.Combine(TempDirectory(), "log.txt");
        using var owner = new ConversationLogWriter(path);
        owner.Append(Line("SYSTEM: one"));
        using (var reader = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        {
            owner.Append(Line("SYSTEM: two"));
            Assert.Equal("SYSTEM: one\nSYSTEM: two\n", new StreamReader(reader).ReadToEnd());
            Assert.Throws<LogPathInUseException>(() => LogFile.Open(owner.Path, empty: true));
        }

        owner.Append(Line("SYSTEM: three"));
        Assert.Equal(new[] { "SYSTEM: one", "SYSTEM: two", "SYSTEM: three" }, LogLines(path));
    }

    [SkippableFact]
    public void AFileNamedThroughALinkedFolderIsTheSameFile()
    {
        Skip.IfNot(RuntimeInformation.IsOSPlatform(OSPlatform.Linux), "symbolic links are resolved on Linux only");
        var folder = TempDirectory();
        var linked = Path.Combine(TempDirectory(), "linked");
        Directory.CreateSymbolicLink(linked, folder);
        using var direct = new ConversationLogWriter(Path.Combine(folder, "log.txt"));
        direct.Append(Line("SYSTEM: direct"));
        using var throughLink = new ConversationLogWriter(Path.Combine(linked, "log.txt")); // joins: no LogPathInUse, nothing emptied
        throughLink.Append(Line("SYSTEM: through the link"));
        Assert.Equal(new[] { "SYSTEM: direct", "SYSTEM: through the link" }, LogLines(Path.Combine(folder, "log.txt")));
    }

    [SkippableFact]
    public void ADeviceIsNoOnesLog()
    {
        Skip.IfNot(File.Exists("/dev/null"), "no /dev/null on this machine");
        using var one = LogFile.Open("/dev/null", empty: true);
        using var other = LogFile.Open("/dev/null", empty: true); // another process may write there too
        one.Write(Line("SYSTEM: gone"));
        other.Write(Line("SYSTEM: gone too"));
    }

    [Fact]
    public void AFileThatCannotBeOpenedIsAnErrorAndJoinsNothing()
    {
        var path = Path.Combine(TempDirectory(), "missing", "log.txt");
        Assert.ThrowsAny<IOException>(() => new ConversationLogWriter(path));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var writer = new ConversationLogWriter(path); // nothing was left behind in the table
        writer.Append(Line("SYSTEM: now"));
        Assert.Equal(new[] { "SYSTEM: now" }, LogLines(path));
    }
}
