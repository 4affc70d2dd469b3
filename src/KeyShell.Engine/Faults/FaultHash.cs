using System;

namespace KeyShell.Engine.Faults;

/// <summary>
/// The stable hash every fault decision is drawn from: SplitMix64's finalizer over (seed, fault index, client
/// id, position, stream), the client id by FNV-1a. Pure arithmetic, the same in every process, on every
/// runtime and build (string.GetHashCode is randomized per process), so a seed replays the same faults.
/// </summary>
public static class FaultHash
{
    /// <summary>The stream of the Probability draw; the others are the Delay's jitter, each Slice pause, Garbage's bytes.</summary>
    public const ulong DrawStream = 0, DelayStream = 1, SliceStream = 1UL << 32, GarbageStream = 2UL << 32;

    /// <summary>FNV-1a, 64 bits, over the client id's bytes.</summary>
    public static ulong OfClient(ReadOnlySpan<byte> clientId)
    {
        var hash = 0xCBF29CE484222325UL;
        foreach (var b in clientId)
        {
            hash = (hash ^ b) * 0x100000001B3UL;
        }

        return hash;
    }

    public static ulong Of(int seed, int faultIndex, ulong clientHash, long position, ulong stream)
    {
        var hash = Mix((ulong)(uint)seed);
        hash = Mix(hash ^ (ulong)(uint)faultIndex);
        hash = Mix(hash ^ clientHash);
        hash = Mix(hash ^ (ulong)position);
        return Mix(hash ^ stream);
    }

    /// <summary>A number in [0, 1) from the hash's top 53 bits.</summary>
    public static double Unit(ulong hash) => (hash >> 11) * (1.0 / (1UL << 53));

    /// <summary>An integer in [-spread, +spread].</summary>
    public static int Spread(ulong hash, int spread) =>
        spread <= 0 ? 0 : (int)(hash % (ulong)(2L * spread + 1)) - spread;

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
