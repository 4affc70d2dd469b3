using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace KeyShell;

/// <summary>Completes Start-KeyServer -Address: loopback, every interface, and each address of this machine.</summary>
public sealed class AddressCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var addresses = new List<(string, string)>
        {
            ("127.0.0.1", "loopback: this machine only (the default)"),
            ("::1", "IPv6 loopback: this machine only"),
            ("localhost", "127.0.0.1"),
            ("0.0.0.0", "every IPv4 interface"),
            ("::", "every IPv6 interface (and IPv4, dual stack)"),
        };
        addresses.AddRange(MachineAddresses.All());
        return MachineAddresses.Matching(addresses, wordToComplete);
    }
}

/// <summary>Completes -ComputerName of the client cmdlets: loopback, localhost, and each address of this machine.</summary>
public sealed class ComputerNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var addresses = new List<(string, string)>
        {
            ("127.0.0.1", "loopback (the default)"),
            ("localhost", "this machine"),
            ("::1", "IPv6 loopback"),
        };
        addresses.AddRange(MachineAddresses.All());
        return MachineAddresses.Matching(addresses, wordToComplete);
    }
}

internal static class MachineAddresses
{
    /// <summary>The unicast addresses of the interfaces that are up, with the interface's name (loopback's are listed first already).</summary>
    public static IEnumerable<(string Address, string Tip)> All()
    {
        NetworkInterface[] interfaces;
        try
        {
            interfaces = NetworkInterface.GetAllNetworkInterfaces();
        }
        catch (NetworkInformationException)
        {
            yield break; // completion offers what it can
        }

        foreach (var nic in interfaces.Where(n => n.OperationalStatus == OperationalStatus.Up || n.NetworkInterfaceType == NetworkInterfaceType.Loopback))
        {
            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                var address = unicast.Address;
                if (IPAddress.IsLoopback(address) || (address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv6LinkLocal))
                {
                    continue; // loopback is offered by name above; a link-local address needs its scope to be bound
                }

                yield return (address.ToString(), $"{nic.Name} ({nic.NetworkInterfaceType})");
            }
        }
    }

    public static IEnumerable<CompletionResult> Matching(IEnumerable<(string Address, string Tip)> addresses, string? wordToComplete)
    {
        var word = (wordToComplete ?? string.Empty).Trim('\'', '"');
        return addresses
            .GroupBy(a => a.Address, StringComparer.OrdinalIgnoreCase)
            .Select(g => g.First())
            .Where(a => a.Address.StartsWith(word, StringComparison.OrdinalIgnoreCase))
            .Select(a => new CompletionResult(a.Address, a.Address, CompletionResultType.ParameterValue, a.Tip));
    }
}
