using System.Net;
using System.Net.Sockets;
using System.Text;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Tests;

/// <summary>Shared helpers: a temporary folder, servers on free loopback ports, raw socket clients.</summary>
internal static class TestSupport
{
    /// <summary>Every wait in these tests is bounded by this.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    public static string TempDirectory()
    {
        var path = Path.Combine(Path.GetTempPath(), "keyshell-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>A server on 127.0.0.1 with a port the OS picks, logging to a fresh file.</summary>
    public static KeyServer StartServer(Action<KeyServerOptions>? configure = null)
    {
        var options = new KeyServerOptions
        {
            Address = IPAddress.Loopback,
            Port = 0,
            LogPath = Path.Combine(TempDirectory(), "conversation_log.txt"),
        };
        configure?.Invoke(options);
        return KeyServer.Start(options);
    }

    /// <summary>A loopback port nothing listens on (bound for a moment, then released).</summary>
    public static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>Opens <paramref name="count"/> connections; disposing the set closes them all (also when a test fails).</summary>
    public static SocketSet ConnectMany(int port, int count)
    {
        var sockets = new SocketSet();
        try
        {
            for (var i = 0; i < count; i++)
            {
                sockets.Add(Connect(port));
            }

            return sockets;
        }
        catch
        {
            sockets.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A loopback port that refuses connections for as long as the returned socket is held: bound, never
    /// listening. (A port merely found free can be handed to another test's server meanwhile, and answer.)
    /// </summary>
    public static Socket RefusingPort(out int port)
    {
        var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        holder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        port = ((IPEndPoint)holder.LocalEndPoint!).Port;
        return holder;
    }

    public static Socket Connect(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            ReceiveTimeout = (int)Bound.TotalMilliseconds,
            SendTimeout = (int)Bound.TotalMilliseconds,
        };
        socket.Connect(IPAddress.Loopback, port);
        return socket;
    }

    public static void Send(Socket socket, string text) => socket.Send(Encoding.ASCII.GetBytes(text));

    /// <summary>Reads until <paramref name="lines"/> LF-terminated replies have arrived.</summary>
    public static string[] ReadLines(Socket socket, int lines)
    {
        var received = new StringBuilder();
        var buffer = new byte[4096];
        while (received.ToString().Count(c => c == '\n') < lines)
        {
            var count = socket.Receive(buffer);
            if (count == 0)
            {
                break;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, count));
        }

        return received.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Reads what one receive returns (the seed's framing).</summary>
    public static string ReceiveOnce(Socket socket)
    {
        var buffer = new byte[4096];
        var count = socket.Receive(buffer);
        return Encoding.ASCII.GetString(buffer, 0, count);
    }

    /// <summary>Reads until the peer closes; returns everything received.</summary>
    public static string ReadToEnd(Socket socket)
    {
        var received = new StringBuilder();
        var buffer = new byte[65536];
        try
        {
            int count;
            while ((count = socket.Receive(buffer)) > 0)
            {
                received.Append(Encoding.ASCII.GetString(buffer, 0, count));
            }
        }
        catch (SocketException)
        {
            // A reset after the reply still leaves what was read.
        }

        return received.ToString();
    }

    /// <summary>Waits, within the bound, for a condition on another thread to hold.</summary>
    public static void Eventually(Func<bool> condition, string what)
    {
        if (!SpinWait.SpinUntil(condition, Bound))
        {
            throw new TimeoutException($"Timed out waiting for: {what}");
        }
    }

    /// <summary>The log's lines; the server may still be writing it.</summary>
    public static string[] LogLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>
    /// Skips the running test when <paramref name="address"/> is an IPv6 one and this machine has no IPv6
    /// loopback (a kernel or container without IPv6): reported as skipped, with the reason.
    /// </summary>
    public static void SkipWithoutIPv6(IPAddress address) =>
        Skip.If(address.AddressFamily == AddressFamily.InterNetworkV6 && !IPv6Loopback.Value, "no IPv6 loopback on this machine: [::1] cannot be bound");

    private static readonly Lazy<bool> IPv6Loopback = new(() =>
    {
        try
        {
            using var probe = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    });

    public static string Reply(int key) => "Response for the key " + key + " : " + new[] { 12, 45, 78, 23, 56, 89, 34, 67, 90, 10 }[key];
}

/// <summary>
/// A fact about what only the net8.0 engine build does (the one PowerShell 7 loads); in the run against the
/// netstandard2.0 build (Windows PowerShell 5.1) it is reported as skipped, with why.
/// </summary>
public sealed class Net8EngineFactAttribute : FactAttribute
{
    public Net8EngineFactAttribute(string why)
    {
#if ENGINE_NETSTANDARD
        Skip = "the net8.0 engine only: " + why;
#endif
    }
}

/// <summary>A theory about what only the net8.0 engine build does; skipped, with why, against the netstandard2.0 build.</summary>
public sealed class Net8EngineTheoryAttribute : TheoryAttribute
{
    public Net8EngineTheoryAttribute(string why)
    {
#if ENGINE_NETSTANDARD
        Skip = "the net8.0 engine only: " + why;
#endif
    }
}
