using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Text;
using KeyShell.Engine.Security;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>
/// A reply never leaves before its log lines are in the file, whatever the driver and with TLS too: the log is
/// a pipe the test fills, so the server's write of the lines blocks, and while it is blocked the client must
/// have received nothing. (A reply sent before its lines, even by microseconds, is already in the client's
/// socket by then: loopback delivers at the send.)
/// </summary>
public class LogBeforeReplyTests : TransportTests
{
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void NoReplyLeavesWhileTheWriteOfItsLinesIsBlocked(bool tls)
    {
        Skip.IfNot(LogPipe.IsSupported, "needs Linux (x86_64 or arm64): a named pipe and /proc/self/task/*/syscall");
        using var log = new LogPipe();
        using var server = StartServer(o =>
        {
            o.LogPath = log.Path;
            if (tls)
            {
                o.Certificate = new ServerCertificate(TestCertificates.Shared.Server);
            }
        });

        using var client = Connect(server.Port);
        using Stream stream = tls ? ShakeHands(client) : new NetworkStream(client);
        log.Fill();
        var lines = new StringBuilder();
        try
        {
            stream.Write(Encoding.ASCII.GetBytes("1 1\n"));
            Eventually(log.IsWriterBlocked, "the server's write of the request's lines blocked on the full log");
            Assert.Equal(0, client.Available);
        }
        finally
        {
            lines.Append(log.Drain()); // the server's write goes on
        }

        var reply = new byte[256];
        var read = stream.ReadAsync(reply, 0, reply.Length);
        var deadline = DateTime.UtcNow + Bound;
        while (!read.Wait(TimeSpan.FromMilliseconds(10)))
        {
            lines.Append(log.Drain()); // the server's lines, as it writes them
            Assert.True(DateTime.UtcNow < deadline, "the reply did not come");
        }

        Assert.StartsWith(Reply(1), Encoding.ASCII.GetString(reply, 0, read.Result));
        lines.Append(log.Drain());
        Assert.Contains("Server: 1 " + Reply(1), lines.ToString());
    }

    private static SslStream ShakeHands(Socket client)
    {
        // TLS 1.2: no session tickets after the handshake, so the first bytes that arrive are the reply's.
        var secure = new SslStream(new NetworkStream(client), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        secure.AuthenticateAsClient(new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = SslProtocols.Tls12 });
        return secure;
    }

    /// <summary>A named pipe as the log, with the test holding its reading end and able to fill it.</summary>
    private sealed class LogPipe : IDisposable
    {
        private const int ReadOnly = 0, WriteOnly = 1, NonBlocking = 0x800;
        private readonly string _directory = TempDirectory();
        private readonly int _reader;
        private int _filler = -1;

        public LogPipe()
        {
            Path = System.IO.Path.Combine(_directory, "log.pipe");
            if (mkfifo(Path, Convert.ToInt32("600", 8)) != 0)
            {
                throw new IOException($"mkfifo failed ({Marshal.GetLastWin32Error()})");
            }

            _reader = open(Path, ReadOnly | NonBlocking); // a reader first: the server's open then does not wait
        }

        public static bool IsSupported =>
            OperatingSystem.IsLinux() && WriteSyscall != 0 && File.Exists("/proc/self/syscall");

        public string Path { get; }

        /// <summary>Fills the pipe to the brim: the next write into it blocks until <see cref="Drain"/>.</summary>
        public void Fill()
        {
            _filler = open(Path, WriteOnly | NonBlocking);
            var block = new byte[4096];
            while (write(_filler, block, block.Length) > 0)
            {
            }

            // A pipe takes a last small write into a partly used page: fill it a byte at a time.
            while (write(_filler, block, 1) > 0)
            {
            }
        }

        /// <summary>True when a thread of this process is in a write(2) to the pipe (the server's, blocked).</summary>
        public bool IsWriterBlocked()
        {
            foreach (var task in Directory.GetDirectories("/proc/self/task"))
            {
                string[] fields;
                try
                {
                    fields = File.ReadAllText(System.IO.Path.Combine(task, "syscall")).Split(' ');
                }
                catch (IOException)
                {
                    continue; // the thread has ended
                }

                if (fields.Length > 1 && fields[0] == WriteSyscall.ToString() && fields[1] != "0x" + _filler.ToString("x")
                    && new FileInfo("/proc/self/fd/" + Convert.ToInt32(fields[1], 16)).LinkTarget == Path)
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>Reads what the pipe holds now (the filler's bytes are NULs and are left out).</summary>
        public string Drain()
        {
            var text = new StringBuilder();
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = ReadPipe(_reader, buffer, buffer.Length)) > 0)
            {
                text.Append(Encoding.UTF8.GetString(buffer, 0, read).Replace("\0", string.Empty));
            }

            return text.ToString();
        }

        public void Dispose()
        {
            Drain();
            if (_filler >= 0)
            {
                close(_filler);
            }

            close(_reader);
            Directory.Delete(_directory, recursive: true);
        }

        private static int WriteSyscall => RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 1,
            Architecture.Arm64 => 64,
            _ => 0,
        };

        [DllImport("libc", SetLastError = true)]
        private static extern int mkfifo(string path, int mode);

        [DllImport("libc", SetLastError = true)]
        private static extern int open(string path, int flags);

        [DllImport("libc", SetLastError = true)]
        private static extern nint write(int fd, byte[] buffer, nint count);

        [DllImport("libc", EntryPoint = "read", SetLastError = true)]
        private static extern nint ReadPipeCore(int fd, byte[] buffer, nint count);

        [DllImport("libc")]
        private static extern int close(int fd);

        private static int ReadPipe(int fd, byte[] buffer, int count) => (int)ReadPipeCore(fd, buffer, count);
    }
}

/// <summary>Every test of <see cref="LogBeforeReplyTests"/> on the portable async path.</summary>
public sealed class LogBeforeReplyTestsOnTheAsyncPath : LogBeforeReplyTests
{
    protected override bool UseEventLoops => false;
}
