using System;

namespace KeyShell.Engine.Faults;

/// <summary>
/// A fault applied to one request (or, for Refuse, one accepted connection), with everything the server needs
/// to carry it out already drawn from the seed: the hold with its jitter, each Slice pause, the Truncate
/// length, the Garbage bytes. The same request under the same set always gets the same values.
/// </summary>
public sealed class FaultAction
{
    private readonly int _seed;
    private readonly ulong _clientHash;

    internal FaultAction(KeyFault fault, int index, int seed, string? clientId, ulong clientHash, string? key, long position)
    {
        Fault = fault;
        Index = index;
        _seed = seed;
        _clientHash = clientHash;
        ClientId = clientId;
        Key = key;
        Position = position;
        DelayMilliseconds = fault.Type == FaultType.Delay ? Hold(FaultHash.DelayStream) : 0;
    }

    public KeyFault Fault { get; }

    /// <summary>The fault's index in its set (0-based).</summary>
    public int Index { get; }

    public FaultType Type => Fault.Type;

    public FaultDirection Direction => Fault.Direction;

    /// <summary>The request's client id; null for Refuse.</summary>
    public string? ClientId { get; }

    /// <summary>The request's key; null for Refuse.</summary>
    public string? Key { get; }

    /// <summary>The request's position among its client's requests (1-based); for Refuse, the connection's
    /// number among the accepted ones.</summary>
    public long Position { get; }

    /// <summary>Delay: how long to hold, jitter drawn (0 for the other types).</summary>
    public int DelayMilliseconds { get; }

    /// <summary>Slice: bytes per piece (0 for the other types).</summary>
    public int SliceBytes => Fault.Type == FaultType.Slice ? Fault.ByteCount!.Value : 0;

    /// <summary>Slice: the pause before piece <paramref name="piece"/> + 1, for piece = 1 .. pieces - 1 (a pause
    /// between each two pieces), jitter drawn for each.</summary>
    public int PauseMilliseconds(int piece) =>
        Fault.Type == FaultType.Slice && piece >= 1 ? Hold(FaultHash.SliceStream + (ulong)piece) : 0;

    /// <summary>Slice: how many pieces a reply of <paramref name="replyLength"/> bytes is sent in.</summary>
    public int PieceCount(int replyLength) =>
        Fault.Type != FaultType.Slice || replyLength <= 0 ? 0 : (replyLength + SliceBytes - 1) / SliceBytes;

    /// <summary>Truncate: how many bytes of a reply of <paramref name="replyLength"/> bytes (its terminator
    /// included) are sent before closing: ByteCount, or half the reply, and never the whole reply.</summary>
    public int TruncatedLength(int replyLength)
    {
        if (Fault.Type != FaultType.Truncate || replyLength <= 0)
        {
            return 0;
        }

        return Math.Min(Fault.ByteCount ?? replyLength / 2, replyLength - 1);
    }

    /// <summary>Garbage: the random bytes to send instead of the reply (ByteCount of them; any byte value, LF
    /// included), drawn from the seed; empty for the other types.</summary>
    public byte[] GarbageBytes()
    {
        if (Fault.Type != FaultType.Garbage)
        {
            return Array.Empty<byte>();
        }

        var bytes = new byte[Fault.ByteCount!.Value];
        for (var i = 0; i < bytes.Length; i += 8)
        {
            var block = FaultHash.Of(_seed, Index, _clientHash, Position, FaultHash.GarbageStream + (ulong)(i / 8));
            for (var j = 0; j < 8 && i + j < bytes.Length; j++)
            {
                bytes[i + j] = (byte)(block >> (8 * j));
            }
        }

        return bytes;
    }

    public override string ToString() =>
        Type == FaultType.Refuse ? $"{Fault.Word} (connection {Position})" : $"{Fault.Word} ({ClientId} {Key}, request {Position})";

    private int Hold(ulong stream)
    {
        var delay = (long)Fault.DelayMilliseconds!.Value + FaultHash.Spread(FaultHash.Of(_seed, Index, _clientHash, Position, stream), Fault.JitterMilliseconds);
        return (int)Math.Max(0, delay);
    }
}
