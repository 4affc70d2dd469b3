using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace KeyShell.Engine.Faults;

/// <summary>
/// One fault, immutable: what it does (<see cref="Type"/> and the parameters that type takes) and which
/// requests it takes. A request is aimed at when its client id matches <see cref="ClientId"/>, its key is in
/// <see cref="Key"/> (any key when null), and its position p (the client's p-th request, 1-based, counted
/// from when the fault set was given to the server, across all of that client's connections) satisfies
/// p &gt; After and (p - After) divisible by Every; then it is taken with <see cref="Probability"/>, drawn
/// from the set's seed (see <see cref="FaultSelector"/>). Refuse is aimed the same way over the server's
/// accepted connections (the n-th connection), as no client id or key is known at accept.
/// </summary>
public sealed class KeyFault
{
    /// <summary>An hour: the longest hold a fault may ask for.</summary>
    public const int MaxMilliseconds = 3_600_000;

    /// <summary>A mebibyte: the most bytes a fault may count.</summary>
    public const int MaxByteCount = 1 << 20;

    public const int DefaultDelayMilliseconds = 1000;
    public const int DefaultSlicePauseMilliseconds = 10;
    public const int DefaultSliceBytes = 1;
    public const int DefaultGarbageBytes = 16;

    private readonly KeySet? _keys;

    /// <summary>Defines a fault; a null argument takes its default. Throws <see cref="FaultDefinitionException"/>
    /// for a parameter out of range or one that <paramref name="type"/> does not take.</summary>
    public KeyFault(
        FaultType type,
        int? delayMilliseconds = null,
        int? jitterMilliseconds = null,
        int? byteCount = null,
        string? clientId = null,
        IEnumerable<string>? key = null,
        double? probability = null,
        int? every = null,
        int? after = null,
        FaultDirection? direction = null)
    {
        if (!Enum.IsDefined(typeof(FaultType), type))
        {
            throw new FaultDefinitionException($"'{type}' is not a fault type: Delay, Stall, Reset, Close, Truncate, Garbage, Slice or Refuse.", nameof(Type), type);
        }

        Type = type;
        var holds = type == FaultType.Delay || type == FaultType.Slice;
        DelayMilliseconds = holds
            ? InRange(delayMilliseconds ?? (type == FaultType.Delay ? DefaultDelayMilliseconds : DefaultSlicePauseMilliseconds), 0, MaxMilliseconds, nameof(DelayMilliseconds))
            : NotTaken(delayMilliseconds, nameof(DelayMilliseconds), "Delay and Slice faults (a Delay's hold, a Slice's pause between pieces)");
        JitterMilliseconds = holds
            ? InRange(jitterMilliseconds ?? 0, 0, MaxMilliseconds, nameof(JitterMilliseconds))
            : NotTaken(jitterMilliseconds, nameof(JitterMilliseconds), "Delay and Slice faults") ?? 0;
        ByteCount = type switch
        {
            FaultType.Slice => InRange(byteCount ?? DefaultSliceBytes, 1, MaxByteCount, nameof(ByteCount)),
            FaultType.Truncate => byteCount is null ? null : InRange(byteCount.Value, 0, MaxByteCount, nameof(ByteCount)),
            FaultType.Garbage => InRange(byteCount ?? DefaultGarbageBytes, 1, MaxByteCount, nameof(ByteCount)),
            _ => NotTaken(byteCount, nameof(ByteCount), "Slice (bytes per piece), Truncate (bytes sent) and Garbage (random bytes sent) faults"),
        };

        var keys = key?.ToArray();
        if (type == FaultType.Refuse)
        {
            if (clientId is not null && !new ClientIdPattern(clientId).MatchesAll)
            {
                throw RefuseAim(nameof(ClientId), clientId);
            }

            if (keys is not null)
            {
                throw RefuseAim(nameof(Key), keys);
            }

            if (direction == FaultDirection.Reply)
            {
                throw new FaultDefinitionException("A Refuse fault closes the connection at accept, before any request: it has no Reply direction.", nameof(Direction), direction);
            }
        }

        ClientIdPattern = clientId is null ? ClientIdPattern.Any : new ClientIdPattern(clientId);
        if (keys is not null)
        {
            if (keys.Length == 0)
            {
                throw new FaultDefinitionException("Key names no key: give one or more keys, or leave it out to aim at every key.", nameof(Key), keys);
            }

            foreach (var one in keys)
            {
                if (string.IsNullOrEmpty(one) || !Protocol.RequestParser.IsToken(Encoding.UTF8.GetBytes(one)))
                {
                    throw new FaultDefinitionException($"'{one}' is not a key: 1 or more visible ASCII characters, no spaces.", nameof(Key), one);
                }
            }

            Key = keys.Distinct(StringComparer.Ordinal).ToArray();
            _keys = new KeySet(Key);
        }

        var chance = probability ?? 1.0;
        if (double.IsNaN(chance) || chance < 0 || chance > 1)
        {
            throw new FaultDefinitionException($"Probability must be between 0 and 1 (0.3 takes 30 % of the requests aimed at); {chance.ToString(CultureInfo.InvariantCulture)} is not.", nameof(Probability), probability);
        }

        Probability = chance;
        Every = InRange(every ?? 1, 1, int.MaxValue, nameof(Every));
        After = InRange(after ?? 0, 0, int.MaxValue, nameof(After));
        Direction = direction ?? (type == FaultType.Refuse ? FaultDirection.Request : FaultDirection.Reply);
    }

    public FaultType Type { get; }

    /// <summary>Delay: how long it holds (1000 by default). Slice: the pause between pieces (10 by default).
    /// Null for the other types.</summary>
    public int? DelayMilliseconds { get; }

    /// <summary>Delay and Slice: each hold or pause is DelayMilliseconds plus a whole number drawn evenly from
    /// [-JitterMilliseconds, +JitterMilliseconds] (never below 0), as Toxiproxy's latency toxic does.</summary>
    public int JitterMilliseconds { get; }

    /// <summary>Slice: bytes per piece (1 by default). Truncate: bytes of the reply sent before closing (null:
    /// half the reply; never the whole reply). Garbage: random bytes sent (16 by default). Null otherwise.</summary>
    public int? ByteCount { get; }

    /// <summary>The client id wildcard (<c>*</c> by default).</summary>
    public string ClientId => ClientIdPattern.Text;

    public ClientIdPattern ClientIdPattern { get; }

    /// <summary>The keys aimed at, exact and case-sensitive; null for every key.</summary>
    public IReadOnlyList<string>? Key { get; }

    /// <summary>The chance (0 to 1) that a request aimed at is taken (1 by default).</summary>
    public double Probability { get; }

    /// <summary>Every N-th request counted after <see cref="After"/>: positions After+N, After+2N, ... (1: all).</summary>
    public int Every { get; }

    /// <summary>The fault leaves the client's first After requests alone (0 by default): it starts at request After+1.</summary>
    public int After { get; }

    public FaultDirection Direction { get; }

    /// <summary>The type's word in log lines: <c>reset</c>.</summary>
    public string Word => WordOf(Type);

    /// <summary>The word a fault type has in log lines (<c>SYSTEM: Fault reset (3 7)</c>).</summary>
    public static string WordOf(FaultType type) => type.ToString().ToLowerInvariant();

    /// <summary>Whether the position rule (After, Every) takes the <paramref name="position"/>-th request (1-based).</summary>
    public bool TakesPosition(long position) => position > After && (position - After) % Every == 0;

    /// <summary>Whether the request's client and key are aimed at (the position and the draw aside).</summary>
    public bool Aims(ReadOnlySpan<byte> clientId, ReadOnlySpan<byte> key) =>
        ClientIdPattern.IsMatch(clientId) && (_keys is null || _keys.Contains(key));

    public override string ToString()
    {
        var text = new StringBuilder(Type.ToString());
        if (DelayMilliseconds is { } delay)
        {
            text.Append(' ').Append(delay.ToString(CultureInfo.InvariantCulture));
            if (JitterMilliseconds > 0)
            {
                text.Append('±').Append(JitterMilliseconds.ToString(CultureInfo.InvariantCulture));
            }

            text.Append(" ms");
        }

        if (ByteCount is { } bytes)
        {
            text.Append(' ').Append(bytes.ToString(CultureInfo.InvariantCulture)).Append(" bytes");
        }

        if (Type != FaultType.Refuse)
        {
            text.Append(", ").Append(Direction).Append(", client ").Append(ClientId);
            if (Key is not null)
            {
                text.Append(", key ").Append(string.Join(",", Key));
            }
        }

        if (After > 0)
        {
            text.Append(", after ").Append(After.ToString(CultureInfo.InvariantCulture));
        }

        if (Every > 1)
        {
            text.Append(", every ").Append(Every.ToString(CultureInfo.InvariantCulture));
        }

        if (Probability < 1)
        {
            text.Append(", probability ").Append(Probability.ToString(CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    private static int InRange(int value, int min, int max, string name) =>
        value >= min && value <= max
            ? value
            : throw new FaultDefinitionException(
                max == int.MaxValue
                    ? string.Format(CultureInfo.InvariantCulture, "{0} must be {1} or more; {2} is not.", name, min, value)
                    : string.Format(CultureInfo.InvariantCulture, "{0} must be between {1:N0} and {2:N0}; {3:N0} is not.", name, min, max, value),
                name,
                value);

    private int? NotTaken(int? value, string name, string takers) =>
        value is null ? null : throw new FaultDefinitionException($"{name} applies to {takers} only; a {Type} fault does not take it.", name, value);

    private static FaultDefinitionException RefuseAim(string name, object value) =>
        new($"A Refuse fault acts at accept, before any client id or key is known: aim it with Probability, Every and After (counted over the server's accepted connections), not with {name}.", name, value);
}
