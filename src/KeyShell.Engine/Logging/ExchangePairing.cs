using System;
using System.Collections.Generic;

namespace KeyShell.Engine.Logging;

/// <summary>What a reply or a fault line met when paired with its client's oldest waiting request.</summary>
internal enum Pairing
{
    /// <summary>Paired with the client's oldest waiting request.</summary>
    Paired,

    /// <summary>The client had no request waiting.</summary>
    NoRequest,

    /// <summary>A fault line whose key is not that of the oldest waiting request (paired all the same).</summary>
    OtherKey,

    /// <summary>A line with no client: nothing to pair.</summary>
    NoClient,
}

/// <summary>
/// Pairs each client's requests with their replies and fault lines, first in first out, as the server answers
/// them: a Server line belongs to the client's oldest request still waiting, a fault line to its oldest
/// waiting request that no fault has taken yet. A Delay or Slice fault line marks that request and leaves it
/// waiting for the reply it delivers; any other fault settles it.
/// With <c>keepHistory</c> every exchange is kept, per client in the order of its first request.
/// </summary>
internal sealed class ExchangePairing
{
    private readonly Dictionary<string, LinkedList<ConversationExchange>> _waiting = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _positions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<ConversationExchange>>? _history;
    private readonly List<string>? _clients;

    public ExchangePairing(bool keepHistory)
    {
        if (keepHistory)
        {
            _history = new Dictionary<string, List<ConversationExchange>>(StringComparer.Ordinal);
            _clients = new List<string>();
        }
    }

    /// <summary>Client ids in the order of their first request (with history only).</summary>
    public IReadOnlyList<string> Clients => _clients ?? (IReadOnlyList<string>)Array.Empty<string>();

    /// <summary>A client's exchanges in order (with history only).</summary>
    public IReadOnlyList<ConversationExchange> ExchangesOf(string clientId) =>
        _history is not null && _history.TryGetValue(clientId, out var list) ? list : Array.Empty<ConversationExchange>();

    /// <summary>A Client line; null for one with no valid client id (it belongs to no client's order).</summary>
    public ConversationExchange? Request(ConversationEntry request)
    {
        if (request.ClientId is not { } client)
        {
            return null;
        }

        var position = _positions.TryGetValue(client, out var count) ? count + 1 : 1;
        _positions[client] = position;
        var exchange = new ConversationExchange(client, position, request);
        Waiting(client).AddLast(exchange);
        if (_history is not null)
        {
            if (!_history.TryGetValue(client, out var list))
            {
                _history[client] = list = new List<ConversationExchange>();
                _clients!.Add(client);
            }

            list.Add(exchange);
        }

        return exchange;
    }

    /// <summary>A Server line.</summary>
    public Pairing Reply(ConversationEntry reply, out ConversationExchange? exchange)
    {
        exchange = null;
        if (reply.ClientId is not { } client)
        {
            return Pairing.NoClient;
        }

        var queue = Waiting(client);
        if (queue.First is not { } oldest)
        {
            return Pairing.NoRequest;
        }

        queue.RemoveFirst();
        exchange = oldest.Value;
        exchange.Reply = reply;
        return Pairing.Paired;
    }

    /// <summary>A fault line on a request (not Refuse).</summary>
    public Pairing Fault(ConversationFault fault, out ConversationExchange? exchange)
    {
        exchange = null;
        if (fault.ClientId is not { } client)
        {
            return Pairing.NoClient;
        }

        var queue = Waiting(client);
        var node = queue.First;
        while (node is not null && node.Value.Fault is not null)
        {
            node = node.Next;
        }

        if (node is null)
        {
            return Pairing.NoRequest;
        }

        exchange = node.Value;
        exchange.Fault = fault;
        if (!fault.Delivers)
        {
            queue.Remove(node);
        }

        return string.Equals(exchange.Key, fault.Key, StringComparison.Ordinal) ? Pairing.Paired : Pairing.OtherKey;
    }

    /// <summary>Requests still waiting at the end of the log, in no particular order of clients.</summary>
    public IEnumerable<ConversationExchange> StillWaiting()
    {
        foreach (var queue in _waiting.Values)
        {
            foreach (var exchange in queue)
            {
                yield return exchange;
            }
        }
    }

    private LinkedList<ConversationExchange> Waiting(string client)
    {
        if (!_waiting.TryGetValue(client, out var queue))
        {
            _waiting[client] = queue = new LinkedList<ConversationExchange>();
        }

        return queue;
    }
}
