using System;
using System.Text;

namespace KeyShell.Engine.Faults;

/// <summary>
/// How many requests each client has made: the position a fault is aimed by. Keyed by the client id's bytes
/// (a request's own bytes; no string per request), one small lock around the table. A server facing more
/// than <see cref="MaxClients"/> distinct client ids starts counting afresh rather than grow without bound.
/// </summary>
internal sealed class ClientPositions
{
    public const int MaxClients = 1 << 20;

    private readonly object _gate = new();
    private Entry?[] _buckets = new Entry?[64];
    private int _count;

    /// <summary>The client's next position: 1 for its first request, then 2, 3, ...</summary>
    public long Next(ReadOnlySpan<byte> clientId, ulong hash)
    {
        lock (_gate)
        {
            var index = (int)(hash & (ulong)(_buckets.Length - 1));
            for (var entry = _buckets[index]; entry is not null; entry = entry.Next)
            {
                if (entry.Hash == hash && clientId.SequenceEqual(entry.Id))
                {
                    return ++entry.Count;
                }
            }

            if (_count >= MaxClients)
            {
                _buckets = new Entry?[64];
                _count = 0;
                index = (int)(hash & 63);
            }

            _buckets[index] = new Entry(clientId.ToArray(), hash, _buckets[index]);
            if (++_count > _buckets.Length)
            {
                Grow();
            }

            return 1;
        }
    }

    /// <summary>How many requests the client has made so far (0 for none).</summary>
    public long Current(string clientId)
    {
        var bytes = Encoding.ASCII.GetBytes(clientId);
        var hash = FaultHash.OfClient(bytes);
        lock (_gate)
        {
            for (var entry = _buckets[(int)(hash & (ulong)(_buckets.Length - 1))]; entry is not null; entry = entry.Next)
            {
                if (entry.Hash == hash && bytes.AsSpan().SequenceEqual(entry.Id))
                {
                    return entry.Count;
                }
            }

            return 0;
        }
    }

    private void Grow()
    {
        var buckets = new Entry?[_buckets.Length * 2];
        foreach (var head in _buckets)
        {
            for (var entry = head; entry is not null;)
            {
                var next = entry.Next;
                var index = (int)(entry.Hash & (ulong)(buckets.Length - 1));
                entry.Next = buckets[index];
                buckets[index] = entry;
                entry = next;
            }
        }

        _buckets = buckets;
    }

    private sealed class Entry
    {
        public Entry(byte[] id, ulong hash, Entry? next)
        {
            Id = id;
            Hash = hash;
            Next = next;
        }

        public byte[] Id { get; }

        public ulong Hash { get; }

        public long Count { get; set; } = 1;

        public Entry? Next { get; set; }
    }
}
