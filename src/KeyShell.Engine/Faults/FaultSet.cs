using System;
using System.Collections.Generic;
using System.Linq;

namespace KeyShell.Engine.Faults;

/// <summary>
/// The faults a server applies, in order, with the seed their draws come from. Immutable: a server swaps its
/// set whole (a request meets the old set or the new one), each time with a new <see cref="FaultSelector"/>,
/// whose positions count from that moment.
/// </summary>
public sealed class FaultSet
{
    public FaultSet(IEnumerable<KeyFault> faults, int seed = 0)
    {
        if (faults is null)
        {
            throw new ArgumentNullException(nameof(faults));
        }

        Faults = faults.ToArray();
        if (Faults.Any(f => f is null))
        {
            throw new ArgumentException("A fault set holds no null fault.", nameof(faults));
        }

        Seed = seed;
        HasRefuse = Faults.Any(f => f.Type == FaultType.Refuse);
        HasRequestFaults = Faults.Any(f => f.Type != FaultType.Refuse);
    }

    /// <summary>No faults: every request answered as usual.</summary>
    public static FaultSet Empty { get; } = new(Array.Empty<KeyFault>());

    public IReadOnlyList<KeyFault> Faults { get; }

    public int Seed { get; }

    public bool IsEmpty => Faults.Count == 0;

    /// <summary>True when some fault acts at accept.</summary>
    public bool HasRefuse { get; }

    /// <summary>True when some fault acts on requests.</summary>
    public bool HasRequestFaults { get; }

    /// <summary>A selector for this set, its positions counted from now.</summary>
    public FaultSelector CreateSelector() => new(this);
}
