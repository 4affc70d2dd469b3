using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using KeyShell.Engine.Server;

namespace KeyShell;

/// <summary>Completes -Port of the cmdlets that act on servers (Stop-, Get-, Set-KeyServer) with the ports of the session's servers.</summary>
public sealed class PortCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Ports.Matching(Ports.OfServers(), wordToComplete);
}

/// <summary>
/// Completes -Port of the client cmdlets (Invoke-KeyClient, Test-KeyServer, Measure-KeyServer) with the ports of
/// the session's servers, or with the seed's 8080 when the session runs none.
/// </summary>
public sealed class ClientPortCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var ports = Ports.OfServers().ToList();
        return Ports.Matching(ports.Count > 0 ? ports : new[] { (KeyServerOptions.DefaultPort, "the seed's port (no server runs in this session)") }, wordToComplete);
    }
}

/// <summary>Completes Start-KeyServer -Port: 0 (a free port the system picks) and the seed's 8080 unless a server of the session has it.</summary>
public sealed class StartPortCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var taken = new HashSet<int>(ServerRegistry.Running().Select(s => s.Port));
        var ports = new List<(int, string)>();
        if (!taken.Contains(KeyServerOptions.DefaultPort))
        {
            ports.Add((KeyServerOptions.DefaultPort, "the seed's port"));
        }

        ports.Add((0, "a free port the system picks (the server's Port tells which)"));
        return Ports.Matching(ports, wordToComplete);
    }
}

internal static class Ports
{
    public static IEnumerable<(int Port, string Tip)> OfServers() =>
        ServerRegistry.Running()
            .GroupBy(s => s.Port)
            .Select(g => (g.Key, string.Join(", ", g.Select(s => $"KeyServer {s.Address}:{s.Port}"))));

    public static IEnumerable<CompletionResult> Matching(IEnumerable<(int Port, string Tip)> ports, string? wordToComplete) =>
        ports
            .Select(p => (Text: p.Port.ToString(CultureInfo.InvariantCulture), p.Tip))
            .Where(p => p.Text.StartsWith(wordToComplete ?? string.Empty, StringComparison.Ordinal))
            .Select(p => new CompletionResult(p.Text, p.Text, CompletionResultType.ParameterValue, p.Tip));
}
