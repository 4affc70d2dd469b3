using System;
using System.Collections.Generic;
using System.Text;

namespace KeyShell.Engine.Faults;

/// <summary>The keys a fault aims at, looked up by the request's key bytes (exact, case-sensitive, as the key
/// map looks keys up) without allocating.</summary>
internal sealed class KeySet
{
    private readonly Dictionary<ulong, byte[][]> _byHash = new();

    public KeySet(IReadOnlyList<string> keys)
    {
        var grouped = new Dictionary<ulong, List<byte[]>>();
        foreach (var key in keys)
        {
            var bytes = Encoding.ASCII.GetBytes(key);
            var hash = FaultHash.OfClient(bytes);
            if (!grouped.TryGetValue(hash, out var list))
            {
                grouped[hash] = list = new List<byte[]>();
            }

            list.Add(bytes);
        }

        foreach (var pair in grouped)
        {
            _byHash[pair.Key] = pair.Value.ToArray();
        }
    }

    public bool Contains(ReadOnlySpan<byte> key)
    {
        if (!_byHash.TryGetValue(FaultHash.OfClient(key), out var candidates))
        {
            return false;
        }

        foreach (var candidate in candidates)
        {
            if (key.SequenceEqual(candidate))
            {
                return true;
            }
        }

        return false;
    }
}
