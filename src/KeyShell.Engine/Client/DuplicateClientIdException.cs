using System;
using System.Collections.Generic;

namespace KeyShell.Engine.Client;

/// <summary>
/// Two sequences with one client id. A client's keys are sent strictly in order and its replies are checked
/// in that order (the log's FIFO check); two sequences of one client would interleave, and that order is
/// undefined. So they are refused before any traffic.
/// </summary>
public sealed class DuplicateClientIdException : ArgumentException
{
    public DuplicateClientIdException(string clientId, ClientSequence first, ClientSequence second)
        : base($"The client id '{clientId}' has two sequences, '{first}' and '{second}': a client's keys are sent, and checked, in one order. Give each sequence its own client id, or join the keys into one sequence.")
    {
        ClientId = clientId;
        First = first;
        Second = second;
    }

    public string ClientId { get; }

    public ClientSequence First { get; }

    public ClientSequence Second { get; }

    /// <summary>Throws for the first client id that two of <paramref name="sequences"/> share.</summary>
    public static void ThrowIfAny(IEnumerable<ClientSequence> sequences)
    {
        var seen = new Dictionary<string, ClientSequence>(StringComparer.Ordinal);
        foreach (var sequence in sequences)
        {
            if (seen.TryGetValue(sequence.ClientId, out var first))
            {
                throw new DuplicateClientIdException(sequence.ClientId, first, sequence);
            }

            seen.Add(sequence.ClientId, sequence);
        }
    }
}
