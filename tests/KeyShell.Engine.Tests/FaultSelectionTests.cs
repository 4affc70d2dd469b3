using System.Collections.Concurrent;
using KeyShell.Engine.Faults;

namespace KeyShell.Engine.Tests;

/// <summary>Which requests a fault set takes: positions, keys, clients, draws, and that nothing else matters.</summary>
public class FaultSelectionTests
{
    private static FaultSelector Selector(int seed, params KeyFault[] faults) => new FaultSet(faults, seed).CreateSelector();

    /// <summary>The positions (1-based) of <paramref name="count"/> requests of one client that get a fault.</summary>
    private static long[] Faulted(FaultSelector selector, string client, int count, Func<int, string>? key = null) =>
        Enumerable.Range(1, count).Where(p => selector.Select(client, key?.Invoke(p) ?? "7") is not null).Select(p => (long)p).ToArray();

    [Fact]
    public void EveryAndAfterCountTheClientsRequestsFromOne()
    {
        Assert.Equal(new long[] { 1, 2, 3, 4, 5, 6 }, Faulted(Selector(0, new KeyFault(FaultType.Reset)), "1", 6));
        Assert.Equal(new long[] { 3, 6, 9, 12 }, Faulted(Selector(0, new KeyFault(FaultType.Reset, every: 3)), "1", 12));
        Assert.Equal(new long[] { 3, 4, 5, 6 }, Faulted(Selector(0, new KeyFault(FaultType.Reset, after: 2)), "1", 6));
        Assert.Equal(new long[] { 5, 8, 11 }, Faulted(Selector(0, new KeyFault(FaultType.Reset, after: 2, every: 3)), "1", 12));
    }

    [Fact]
    public void EachClientHasItsOwnPositions()
    {
        var selector = Selector(0, new KeyFault(FaultType.Close, every: 2));
        var faulted = new List<string>();
        foreach (var client in new[] { "a", "b", "a", "a", "b", "c", "b", "a" })
        {
            if (selector.Select(client, "1") is { } action)
            {
                faulted.Add($"{action.ClientId}{action.Position}");
            }
        }

        Assert.Equal(new[] { "a2", "b2", "a4" }, faulted);
        Assert.Equal(4, selector.PositionOf("a"));
        Assert.Equal(3, selector.PositionOf("b"));
        Assert.Equal(0, selector.PositionOf("never"));
    }

    [Fact]
    public void KeysNarrowTheAimButEveryRequestOfTheClientCounts()
    {
        var fault = new KeyFault(FaultType.Reset, key: new[] { "7" }, every: 2);
        Assert.Equal(new long[] { 2, 4 }, Faulted(Selector(0, fault), "1", 4, p => "7"));
        Assert.Equal(new long[] { 2, 4 }, Faulted(Selector(0, fault), "1", 4, p => p % 2 == 0 ? "7" : "1"));
        Assert.Empty(Faulted(Selector(0, fault), "1", 4, p => p % 2 == 0 ? "1" : "7"));
        Assert.Empty(Faulted(Selector(0, new KeyFault(FaultType.Reset, key: new[] { "a" })), "1", 3, p => "A"));
    }

    [Fact]
    public void ClientsNoFaultAimsAtAreNeitherFaultedNorCounted()
    {
        var selector = Selector(0, new KeyFault(FaultType.Reset, clientId: "worker-*"));
        Assert.Null(selector.Select("boss", "1"));
        Assert.Equal(0, selector.PositionOf("boss"));
        Assert.NotNull(selector.Select("Worker-3", "1"));
        Assert.Equal(1, selector.PositionOf("Worker-3"));
    }

    [Fact]
    public void AnEmptySetFaultsNothing()
    {
        var selector = FaultSet.Empty.CreateSelector();
        Assert.Null(selector.Select("1", "7"));
        Assert.Null(selector.SelectAtAccept());
        Assert.Equal(0, selector.AcceptedConnections);
    }

    [Fact]
    public void ProbabilityTakesAboutThatShareAndZeroAndOneAreExact()
    {
        Assert.Empty(Faulted(Selector(7, new KeyFault(FaultType.Reset, probability: 0)), "1", 1000));
        Assert.Equal(1000, Faulted(Selector(7, new KeyFault(FaultType.Reset, probability: 1)), "1", 1000).Length);

        // Deterministic, so not a flaky bound: the share the seed gives, which is close to 0.3.
        var share = Faulted(Selector(7, new KeyFault(FaultType.Reset, probability: 0.3)), "1", 10_000).Length / 10_000.0;
        Assert.InRange(share, 0.28, 0.32);
    }

    [Fact]
    public void TheSameSeedTakesTheSameRequestsAndAnotherSeedOthers()
    {
        var fault = new KeyFault(FaultType.Reset, probability: 0.3);
        var first = Faulted(Selector(7, fault), "3", 200);
        Assert.Equal(first, Faulted(Selector(7, fault), "3", 200));
        Assert.NotEqual(first, Faulted(Selector(8, fault), "3", 200));
        Assert.NotEqual(first, Faulted(Selector(7, fault), "4", 200));
    }

    [Fact]
    public void NeitherOtherClientsNorTheirInterleavingNorThreadsChangeAClientsFaults()
    {
        var fault = new KeyFault(FaultType.Reset, probability: 0.3);
        var clients = Enumerable.Range(1, 8).Select(i => i.ToString()).ToArray();
        var alone = clients.ToDictionary(c => c, c => Faulted(Selector(7, fault), c, 500));

        // Round robin, one selector for all.
        var shared = Selector(7, fault);
        var interleaved = clients.ToDictionary(c => c, _ => new List<long>());
        for (var p = 1; p <= 500; p++)
        {
            foreach (var client in clients)
            {
                if (shared.Select(client, "7") is { } action)
                {
                    interleaved[client].Add(action.Position);
                }
            }
        }

        // Eight threads, one per client, racing on one selector, with a hundred other clients beside them.
        var raced = Selector(7, fault);
        var parallel = new ConcurrentDictionary<string, long[]>();
        Parallel.ForEach(clients.Concat(Enumerable.Range(100, 100).Select(i => "other" + i)), new ParallelOptions { MaxDegreeOfParallelism = 8 },
            client => parallel[client] = Faulted(raced, client, 500));

        foreach (var client in clients)
        {
            Assert.NotEmpty(alone[client]);
            Assert.Equal(alone[client], interleaved[client]);
            Assert.Equal(alone[client], parallel[client]);
        }
    }

    [Fact]
    public void TheFirstFaultThatTakesARequestApplies()
    {
        var reset = new KeyFault(FaultType.Reset, probability: 0.5);
        var close = new KeyFault(FaultType.Close);
        var both = Selector(3, reset, close);
        var resetAlone = Selector(3, reset);
        for (var p = 1; p <= 200; p++)
        {
            var action = both.Select("1", "7");
            var alone = resetAlone.Select("1", "7");
            Assert.NotNull(action);
            Assert.Equal(alone is null ? FaultType.Close : FaultType.Reset, action!.Type);
            Assert.Equal(alone is null ? 1 : 0, action.Index);
        }
    }

    [Fact]
    public void AFaultAddedAfterTheOthersLeavesTheirChoicesAlone()
    {
        var reset = new KeyFault(FaultType.Reset, probability: 0.3);
        var before = Faulted(Selector(5, reset), "1", 300);
        var selector = Selector(5, reset, new KeyFault(FaultType.Delay, probability: 0.5));
        var after = Enumerable.Range(1, 300).Where(p => selector.Select("1", "7")?.Type == FaultType.Reset).Select(p => (long)p).ToArray();
        Assert.Equal(before, after);
    }

    [Fact]
    public void SelectAtIsTheSameAnswerWithoutCounting()
    {
        var selector = Selector(9, new KeyFault(FaultType.Garbage, probability: 0.4, after: 1));
        var counted = Faulted(Selector(9, new KeyFault(FaultType.Garbage, probability: 0.4, after: 1)), "x", 100);
        var pure = Enumerable.Range(1, 100).Where(p => selector.SelectAt("x", "7", p) is not null).Select(p => (long)p).ToArray();
        Assert.Equal(counted, pure);
        Assert.Equal(0, selector.PositionOf("x"));
        Assert.Null(selector.SelectAt("x", "7", 0));
    }

    [Fact]
    public void RefuseCountsAcceptedConnectionsAndOnlyRefuseActsThere()
    {
        var selector = Selector(0, new KeyFault(FaultType.Refuse, every: 3), new KeyFault(FaultType.Reset));
        var refused = Enumerable.Range(1, 9).Where(_ => selector.SelectAtAccept() is not null).ToArray();
        Assert.Equal(new[] { 3, 6, 9 }, refused);
        Assert.Equal(9, selector.AcceptedConnections);
        Assert.Equal(FaultType.Reset, selector.Select("1", "7")!.Type); // Refuse never takes a request
        var action = selector.SelectAtAccept(6)!;
        Assert.Equal(6, action.Position);
        Assert.Null(action.ClientId);
        Assert.Equal("refuse (connection 6)", action.ToString());

        var noRefuse = Selector(0, new KeyFault(FaultType.Reset));
        Assert.Null(noRefuse.SelectAtAccept());
        Assert.Equal(0, noRefuse.AcceptedConnections);
    }

    [Fact]
    public void RefuseWithProbabilityIsDeterministicOverConnectionNumbers()
    {
        var fault = new KeyFault(FaultType.Refuse, probability: 0.5);
        var first = Enumerable.Range(1, 100).Where(n => Selector(4, fault).SelectAtAccept(n) is not null).ToArray();
        Assert.Equal(first, Enumerable.Range(1, 100).Where(n => Selector(4, fault).SelectAtAccept(n) is not null).ToArray());
        Assert.InRange(first.Length, 35, 65);
    }
}

/// <summary>What an applied fault carries: holds, pauses, lengths and bytes, all drawn from the seed.</summary>
public class FaultActionTests
{
    private static FaultAction Action(KeyFault fault, int seed = 0, string client = "1", long position = 1) =>
        new FaultSet(new[] { fault }, seed).CreateSelector().SelectAt(client, "7", position)!;

    [Fact]
    public void ADelayHoldsWithinItsJitterNeverBelowZeroAndTheSameEachTime()
    {
        var fault = new KeyFault(FaultType.Delay, delayMilliseconds: 100, jitterMilliseconds: 30);
        var holds = Enumerable.Range(1, 500).Select(p => Action(fault, position: p).DelayMilliseconds).ToArray();
        Assert.All(holds, h => Assert.InRange(h, 70, 130));
        Assert.Contains(holds, h => h < 85);
        Assert.Contains(holds, h => h > 115);
        Assert.Equal(holds, Enumerable.Range(1, 500).Select(p => Action(fault, position: p).DelayMilliseconds));

        Assert.Equal(100, Action(new KeyFault(FaultType.Delay, delayMilliseconds: 100)).DelayMilliseconds);
        var wide = new KeyFault(FaultType.Delay, delayMilliseconds: 10, jitterMilliseconds: 50);
        Assert.All(Enumerable.Range(1, 200), p => Assert.InRange(Action(wide, position: p).DelayMilliseconds, 0, 60));
        Assert.Contains(Enumerable.Range(1, 200), p => Action(wide, position: p).DelayMilliseconds == 0);
    }

    [Fact]
    public void ASliceCutsTheReplyIntoPiecesWithAPauseBetweenEachTwo()
    {
        var action = Action(new KeyFault(FaultType.Slice, delayMilliseconds: 20, jitterMilliseconds: 5, byteCount: 4));
        Assert.Equal(4, action.SliceBytes);
        Assert.Equal(7, action.PieceCount(28));
        Assert.Equal(1, action.PieceCount(3));
        Assert.Equal(0, action.PieceCount(0));
        var pauses = Enumerable.Range(1, 6).Select(action.PauseMilliseconds).ToArray();
        Assert.All(pauses, p => Assert.InRange(p, 15, 25));
        Assert.Equal(pauses, Enumerable.Range(1, 6).Select(action.PauseMilliseconds));
        Assert.Equal(0, action.PauseMilliseconds(0));
        Assert.Equal(0, action.DelayMilliseconds);
    }

    [Theory]
    [InlineData(null, 28, 14)]
    [InlineData(null, 1, 0)]
    [InlineData(5, 28, 5)]
    [InlineData(0, 28, 0)]
    [InlineData(100, 28, 27)]
    public void TruncateSendsByteCountOrHalfButNeverTheWholeReply(int? byteCount, int replyLength, int expected) =>
        Assert.Equal(expected, Action(new KeyFault(FaultType.Truncate, byteCount: byteCount)).TruncatedLength(replyLength));

    [Fact]
    public void GarbageIsByteCountBytesTheSameForTheSameRequestAndOthersForOthers()
    {
        var fault = new KeyFault(FaultType.Garbage, byteCount: 37);
        var bytes = Action(fault, seed: 7, position: 3).GarbageBytes();
        Assert.Equal(37, bytes.Length);
        Assert.Equal(bytes, Action(fault, seed: 7, position: 3).GarbageBytes());
        Assert.NotEqual(bytes, Action(fault, seed: 7, position: 4).GarbageBytes());
        Assert.NotEqual(bytes, Action(fault, seed: 8, position: 3).GarbageBytes());
        Assert.True(bytes.Distinct().Count() > 20, "random bytes, not a pattern");
        Assert.Empty(Action(new KeyFault(FaultType.Reset)).GarbageBytes());
    }

    [Fact]
    public void TheOtherTypesCarryNothingToDraw()
    {
        var action = Action(new KeyFault(FaultType.Stall, direction: FaultDirection.Request), position: 4);
        Assert.Equal(FaultType.Stall, action.Type);
        Assert.Equal(FaultDirection.Request, action.Direction);
        Assert.Equal(0, action.DelayMilliseconds);
        Assert.Equal(0, action.TruncatedLength(28));
        Assert.Equal(0, action.SliceBytes);
        Assert.Equal("stall (1 7, request 4)", action.ToString());
    }
}

/// <summary>The hash is the same in every process and on both engine builds: these values are pinned.</summary>
public class FaultHashTests
{
    [Fact]
    public void KnownInputsGiveKnownValues()
    {
        Assert.Equal(0xCBF29CE484222325UL, FaultHash.OfClient(ReadOnlySpan<byte>.Empty));
        Assert.Equal(0xAF63AC4C86019AFCUL, FaultHash.OfClient("1"u8));
        Assert.Equal(PinnedOf, FaultHash.Of(7, 0, FaultHash.OfClient("3"u8), 5, FaultHash.DrawStream));
        Assert.Equal(PinnedUnit, FaultHash.Unit(PinnedOf), 15);
    }

    [Fact]
    public void SpreadStaysWithinItsBounds()
    {
        Assert.Equal(0, FaultHash.Spread(12345, 0));
        for (ulong h = 0; h < 1000; h++)
        {
            Assert.InRange(FaultHash.Spread(h * 0x9E3779B97F4A7C15UL, 3), -3, 3);
        }

        Assert.Equal(-3, FaultHash.Spread(0, 3));
        Assert.Equal(3, FaultHash.Spread(6, 3));
    }

    private const ulong PinnedOf = 0xB8E8F6D31CF2F1A9UL; // computed apart from the engine, by the same recipe
    private const double PinnedUnit = 0.7223047509587095;
}
