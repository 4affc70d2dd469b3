using System;
using System.Text;
using System.Threading;

namespace KeyShell.Engine.Faults;

/// <summary>
/// What a server asks, per request and per accepted connection: which fault, if any? The answer depends only
/// on the set (its faults, their order, its seed), the client id, the key and the request's position among
/// its client's requests: never on threads, timing or other clients. So the same sequences against the same
/// set fault the same requests on every run, on either driver, however many sequences run beside them.
/// <para>Several faults may aim at one request: they are tried in the set's order, and the first that aims
/// at it, takes its position and wins its draw applies; the others do not (one fault per request at most).
/// Each fault draws on its own (the hash of seed, fault index, client id, position): adding a fault after the
/// others leaves their choices as they were.</para>
/// <para>Positions count from when the selector was made (the set given to the server), across every
/// connection of the client: a client that opens a connection per request still has its 1st, 2nd, ...
/// request. Requests with no valid client id are never faulted, and not counted.</para>
/// </summary>
public sealed class FaultSelector
{
    private readonly KeyFault[] _faults;
    private readonly ClientPositions _positions = new();
    private long _accepted;

    internal FaultSelector(FaultSet set)
    {
        Set = set;
        _faults = new KeyFault[set.Faults.Count];
        for (var i = 0; i < _faults.Length; i++)
        {
            _faults[i] = set.Faults[i];
        }
    }

    public FaultSet Set { get; }

    /// <summary>Connections accepted since the selector was made (counted only when the set has a Refuse fault).</summary>
    public long AcceptedConnections => Interlocked.Read(ref _accepted);

    /// <summary>How many requests of <paramref name="clientId"/> have been counted (0 for none): the last position.</summary>
    public long PositionOf(string clientId) => _positions.Current(clientId);

    /// <summary>Counts the request as its client's next one and returns the fault it gets, or null. Call it once
    /// per request, in the order the client sent them (a server reads each connection's requests in order).</summary>
    public FaultAction? Select(ReadOnlySpan<byte> clientId, ReadOnlySpan<byte> key)
    {
        if (!Set.HasRequestFaults || !AimsClient(clientId))
        {
            return null; // a client no fault aims at needs no position
        }

        var clientHash = FaultHash.OfClient(clientId);
        return SelectCore(clientId, key, _positions.Next(clientId, clientHash), clientHash);
    }

    public FaultAction? Select(string clientId, string key) => Select(Encoding.ASCII.GetBytes(clientId), Encoding.ASCII.GetBytes(key));

    /// <summary>The fault the <paramref name="position"/>-th request (1-based) of a client gets, or null; counts nothing.</summary>
    public FaultAction? SelectAt(ReadOnlySpan<byte> clientId, ReadOnlySpan<byte> key, long position) =>
        position < 1 || !Set.HasRequestFaults ? null : SelectCore(clientId, key, position, FaultHash.OfClient(clientId));

    public FaultAction? SelectAt(string clientId, string key, long position) =>
        SelectAt(Encoding.ASCII.GetBytes(clientId), Encoding.ASCII.GetBytes(key), position);

    /// <summary>Counts an accepted connection and returns the Refuse fault it gets, or null. Call it once per
    /// accepted connection, before anything is read from it.</summary>
    public FaultAction? SelectAtAccept() =>
        Set.HasRefuse ? SelectAtAccept(Interlocked.Increment(ref _accepted)) : null;

    /// <summary>The Refuse fault the <paramref name="connection"/>-th accepted connection (1-based) gets, or null; counts nothing.</summary>
    public FaultAction? SelectAtAccept(long connection)
    {
        if (connection < 1)
        {
            return null;
        }

        for (var i = 0; i < _faults.Length; i++)
        {
            var fault = _faults[i];
            if (fault.Type == FaultType.Refuse && fault.TakesPosition(connection) && Draws(fault, i, 0, connection))
            {
                return new FaultAction(fault, i, Set.Seed, null, 0, null, connection);
            }
        }

        return null;
    }

    private bool AimsClient(ReadOnlySpan<byte> clientId)
    {
        foreach (var fault in _faults)
        {
            if (fault.Type != FaultType.Refuse && fault.ClientIdPattern.IsMatch(clientId))
            {
                return true;
            }
        }

        return false;
    }

    private FaultAction? SelectCore(ReadOnlySpan<byte> clientId, ReadOnlySpan<byte> key, long position, ulong clientHash)
    {
        for (var i = 0; i < _faults.Length; i++)
        {
            var fault = _faults[i];
            if (fault.Type != FaultType.Refuse && fault.TakesPosition(position) && fault.Aims(clientId, key) && Draws(fault, i, clientHash, position))
            {
                return new FaultAction(fault, i, Set.Seed, Encoding.ASCII.GetString(clientId.ToArray()), clientHash, Encoding.ASCII.GetString(key.ToArray()), position);
            }
        }

        return null;
    }

    private bool Draws(KeyFault fault, int index, ulong clientHash, long position) =>
        fault.Probability >= 1 || (fault.Probability > 0 && FaultHash.Unit(FaultHash.Of(Set.Seed, index, clientHash, position, FaultHash.DrawStream)) < fault.Probability);
}
