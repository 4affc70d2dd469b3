using System;
using System.Collections.Generic;
using System.Linq;

namespace KeyShell.Engine.Logging;

/// <summary>
/// Compares two conversation logs request by request: each client's n-th request in one log against its n-th
/// request in the other, by key and by outcome (the reply, or the fault that took it). Timestamps, connection
/// lines and every other SYSTEM line play no part, nor does the order in which different clients were
/// served; requests with no valid client id belong to no client's order and are not compared.
/// </summary>
public static class ConversationComparison
{
    /// <summary>The requests that differ (with <paramref name="includeEqual"/>, all of them): clients in the order
    /// of their first request in the reference log, then those only in the difference log; each client's
    /// requests in order.</summary>
    public static IEnumerable<ConversationDifference> Compare(
        IEnumerable<(int LineNumber, string Line, ConversationEntry? Entry)> reference,
        IEnumerable<(int LineNumber, string Line, ConversationEntry? Entry)> difference,
        bool includeEqual = false)
    {
        var left = Pair(reference);
        var right = Pair(difference);
        foreach (var client in left.Clients.Concat(right.Clients.Where(c => left.ExchangesOf(c).Count == 0)))
        {
            var ours = left.ExchangesOf(client);
            var theirs = right.ExchangesOf(client);
            for (var i = 0; i < Math.Max(ours.Count, theirs.Count); i++)
            {
                var compared = new ConversationDifference(client, i + 1, i < ours.Count ? ours[i] : null, i < theirs.Count ? theirs[i] : null);
                if (includeEqual || !compared.IsEqual)
                {
                    yield return compared;
                }
            }
        }
    }

    public static IEnumerable<ConversationDifference> Compare(string referencePath, string differencePath, bool includeEqual = false) =>
        Compare(ConversationCheck.Read(referencePath), ConversationCheck.Read(differencePath), includeEqual);

    private static ExchangePairing Pair(IEnumerable<(int LineNumber, string Line, ConversationEntry? Entry)> lines)
    {
        var pairing = new ExchangePairing(keepHistory: true);
        foreach (var (_, _, entry) in lines)
        {
            switch (entry)
            {
                case ConversationFault { Connection: null } fault:
                    pairing.Fault(fault, out _);
                    break;
                case { Source: ConversationLine.Client }:
                    pairing.Request(entry);
                    break;
                case { Source: ConversationLine.Server }:
                    pairing.Reply(entry, out _);
                    break;
            }
        }

        return pairing;
    }
}
