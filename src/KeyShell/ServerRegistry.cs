using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KeyShell.Engine.Server;

namespace KeyShell;

/// <summary>The servers started in this session (process), for Get-KeyServer, Stop-KeyServer and clean-up.</summary>
internal static class ServerRegistry
{
    private static readonly object Gate = new();
    private static readonly List<KeyServer> Servers = new();

    public static void Add(KeyServer server)
    {
        lock (Gate)
        {
            Servers.Add(server);
        }
    }

    public static void Remove(KeyServer server)
    {
        lock (Gate)
        {
            Servers.Remove(server);
        }
    }

    /// <summary>The running servers, oldest first; stopped ones are dropped.</summary>
    public static IReadOnlyList<KeyServer> Running()
    {
        lock (Gate)
        {
            Servers.RemoveAll(s => s.State == KeyServerState.Stopped);
            return Servers.ToArray();
        }
    }

    public static IReadOnlyList<KeyServer> OnPort(int port) => Running().Where(s => s.Port == port).ToArray();

    /// <summary>The running servers on <paramref name="ports"/>; a port with none is a KeyServerNotFound error.</summary>
    public static IReadOnlyList<KeyServer> OnPorts(Cmdlet cmdlet, IEnumerable<int> ports)
    {
        var found = new List<KeyServer>();
        foreach (var port in ports)
        {
            var onPort = OnPort(port);
            if (onPort.Count == 0)
            {
                cmdlet.WriteError(new ErrorRecord(
                    new ItemNotFoundException($"No KeyServer of this session runs on port {port}."),
                    ErrorIds.KeyServerNotFound, ErrorCategory.ObjectNotFound, port));
            }

            found.AddRange(onPort);
        }

        return found;
    }

    /// <summary>Stops every server (module removal, process exit).</summary>
    public static void StopAll()
    {
        foreach (var server in Running())
        {
            server.Stop();
            Remove(server);
        }
    }
}
