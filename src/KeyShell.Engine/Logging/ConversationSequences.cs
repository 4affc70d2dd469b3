using System;
using System.Collections.Generic;
using System.Text;

namespace KeyShell.Engine.Logging;

/// <summary>
/// Turns a log's requests back into the sequences that sent them: one per client id, in the order of the
/// client's first request, its keys in the order the log has them (faulted requests included: the client
/// sent them). Written as the seed writes sequences, <c>'3 7 8 9'</c>, which Invoke-KeyClient -Sequences and
/// Measure-KeyServer take.
/// </summary>
public sealed class ConversationSequences
{
    private readonly Dictionary<string, List<string>> _keys = new(StringComparer.Ordinal);
    private readonly List<string> _clients = new();

    /// <summary>Takes one entry; returns false for a Client line with no valid client id, which no sequence can
    /// send again (other lines are ignored, and return true).</summary>
    public bool Add(ConversationEntry entry) => entry is null || Add(entry.Source, entry.ClientId, entry.Key);

    /// <summary>Takes an entry by its parts (a deserialized entry, from a job or a remote session, has only these).</summary>
    public bool Add(string? source, string? clientId, string? key)
    {
        if (source != ConversationLine.Client)
        {
            return true;
        }

        if (clientId is not { } client || string.IsNullOrEmpty(key))
        {
            return false;
        }

        if (!_keys.TryGetValue(client, out var keys))
        {
            _keys[client] = keys = new List<string>();
            _clients.Add(client);
        }

        keys.Add(key!);
        return true;
    }

    /// <summary>The sequences so far, <c>'&lt;client&gt; &lt;key&gt; &lt;key&gt; ...'</c>.</summary>
    public IEnumerable<string> ToStrings()
    {
        foreach (var client in _clients)
        {
            var text = new StringBuilder(client);
            foreach (var key in _keys[client])
            {
                text.Append(' ').Append(key);
            }

            yield return text.ToString();
        }
    }
}
