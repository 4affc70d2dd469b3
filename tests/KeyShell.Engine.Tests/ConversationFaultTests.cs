using System.Text;
using FsCheck;
using FsCheck.Xunit;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Tests;

/// <summary>Fault lines in the conversation log: written, read back, and accounted for by the check.</summary>
public class ConversationFaultTests
{
    internal static IEnumerable<(int, string, ConversationEntry?)> Lines(params string[] lines) =>
        lines.Select((line, i) => (i + 1, line, ConversationEntry.Parse(line, i + 1)));

    private static string Written(Action<ByteBuffer> write)
    {
        using var log = new ByteBuffer();
        write(log);
        return Encoding.ASCII.GetString(log.Span);
    }

    [Theory]
    [InlineData(FaultType.Delay, "delay")]
    [InlineData(FaultType.Stall, "stall")]
    [InlineData(FaultType.Reset, "reset")]
    [InlineData(FaultType.Close, "close")]
    [InlineData(FaultType.Truncate, "truncate")]
    [InlineData(FaultType.Garbage, "garbage")]
    [InlineData(FaultType.Slice, "slice")]
    public void AFaultLineIsSystemFaultTypeAndTheRequest(FaultType type, string word)
    {
        Assert.Equal($"SYSTEM: Fault {word} (3 7)\n", Written(log => ConversationLine.WriteFault(log, "", type, "3"u8, "7"u8)));
        Assert.Equal($"2026-11-25T20:17:30.1234567Z SYSTEM: Fault {word} (worker-1 a\\\\b)\n",
            Written(log => ConversationLine.WriteFault(log, "2026-11-25T20:17:30.1234567Z ", type, "worker-1"u8, "a\\b"u8)));
    }

    [Fact]
    public void ARefuseLineNamesTheAcceptedConnection()
    {
        Assert.Equal("Fault refuse (connection 5)", ConversationLine.RefuseFault(5));
        Assert.Equal("SYSTEM: Fault refuse (connection 12)\n", Written(log => ConversationLine.WriteRefuseFault(log, "", 12)));
    }

    [Fact]
    public void FaultLinesAreReadAsFaultsOfTheirOwnKind()
    {
        var fault = Assert.IsType<ConversationFault>(ConversationEntry.Parse("2026-11-25T20:17:30.1234567Z SYSTEM: Fault reset (3 7)", 4));
        Assert.Equal("SYSTEM", fault.Source);
        Assert.Equal("reset", fault.Fault);
        Assert.Equal(FaultType.Reset, fault.FaultType);
        Assert.Equal("3", fault.ClientId);
        Assert.Equal("7", fault.Key);
        Assert.Null(fault.Connection);
        Assert.Null(fault.Reply);
        Assert.Equal(4, fault.LineNumber);
        Assert.Equal(new DateTime(2026, 11, 25, 20, 17, 30, DateTimeKind.Utc).AddTicks(1234567), fault.Time);
        Assert.Equal("Fault reset (3 7)", fault.Text);
        Assert.False(fault.Delivers);
        Assert.True(((ConversationFault)ConversationEntry.Parse("SYSTEM: Fault delay (3 7)", 1)!).Delivers);
        Assert.True(((ConversationFault)ConversationEntry.Parse("SYSTEM: Fault slice (3 7)", 1)!).Delivers);

        var refuse = Assert.IsType<ConversationFault>(ConversationEntry.Parse("SYSTEM: Fault refuse (connection 5)", 1));
        Assert.Equal(FaultType.Refuse, refuse.FaultType);
        Assert.Equal(5, refuse.Connection);
        Assert.Null(refuse.ClientId);

        var unknown = Assert.IsType<ConversationFault>(ConversationEntry.Parse("SYSTEM: Fault bandwidth (3 7)", 1));
        Assert.Equal("bandwidth", unknown.Fault);
        Assert.Null(unknown.FaultType);
    }

    [Theory]
    [InlineData("SYSTEM: Fault reset")]
    [InlineData("SYSTEM: Fault reset (3)")]
    [InlineData("SYSTEM: Fault reset (3 7")]
    [InlineData("SYSTEM: Fault  (3 7)")]
    [InlineData("SYSTEM: Faulty (3 7)")]
    [InlineData("SYSTEM: Fault refuse (3 7)")]
    [InlineData("SYSTEM: Fault refuse (connection x)")]
    [InlineData("SYSTEM: Client connected!")]
    public void OtherSystemLinesStayPlainEntries(string line)
    {
        var entry = ConversationEntry.Parse(line, 1);
        Assert.NotNull(entry);
        Assert.IsNotType<ConversationFault>(entry);
        Assert.Equal("SYSTEM", entry!.Source);
    }

    [Property(MaxTest = 300)]
    public bool AnyRequestsFaultLineReadsBackAsThatRequest(NonEmptyString client, NonEmptyString key, byte typeSeed)
    {
        var clientId = Token(client.Get, 64);
        var keyText = Token(key.Get, 200);
        var type = (FaultType)(typeSeed % 7); // the request faults, Refuse aside
        var line = Written(log => ConversationLine.WriteFault(log, "", type, Encoding.ASCII.GetBytes(clientId), Encoding.ASCII.GetBytes(keyText))).TrimEnd('\n');
        return ConversationEntry.Parse(line, 1) is ConversationFault fault &&
               fault.ClientId == clientId && fault.Key == keyText && fault.FaultType == type && fault.Fault == KeyFault.WordOf(type);
    }

    private static string Token(string seed, int max) => new(seed.Take(max).Select(c => (char)(0x21 + (c % 94))).ToArray());
}

/// <summary>Test-KeyConversation's view of faults: a faulted request is accounted for, and listed.</summary>
public class ConversationCheckFaultTests
{
    private static ConversationCheck Check(params string[] lines) => ConversationCheck.Verify(ConversationFaultTests.Lines(lines));

    [Fact]
    public void AFaultInTheReplysPlaceAccountsForTheRequest()
    {
        var check = Check("SYSTEM: Client connected!", "Client: 3 7", "SYSTEM: Fault reset (3 7)", "SYSTEM: Client deconnected!",
            "Client: 3 8", "Server: 3 Response for the key 8 : 90");
        Assert.True(check.IsValid, string.Join("\n", check.Problems));
        Assert.Equal(2, check.Requests);
        Assert.Equal(1, check.Replies);
        Assert.Equal(1, check.Faults);
        var faulted = Assert.Single(check.FaultedRequests);
        Assert.Equal(("3", "7", "reset", 2, 3), (faulted.ClientId, faulted.Key, faulted.Fault, faulted.RequestLine, faulted.FaultLine));
        Assert.Null(faulted.ReplyLine);
        Assert.Equal("Line 3: client 3's key 7 (line 2) got fault reset.", faulted.ToString());
    }

    [Fact]
    public void WithoutItsFaultLineTheSameRequestIsUnanswered()
    {
        var check = Check("Client: 3 7", "Client: 3 8", "Server: 3 Response for the key 8 : 90");
        Assert.False(check.IsValid);
    }

    [Fact]
    public void ADelayOrSliceIsFollowedByItsReplyAndAccountedForWithoutIt()
    {
        var check = Check("Client: 3 7", "Client: 3 8", "SYSTEM: Fault delay (3 7)", "SYSTEM: Fault slice (3 8)",
            "Server: 3 Response for the key 7 : 67", "Server: 3 Response for the key 8 : 90", "Client: 4 1", "SYSTEM: Fault delay (4 1)");
        Assert.True(check.IsValid, string.Join("\n", check.Problems));
        Assert.Equal(new int?[] { 5, 6, null }, check.FaultedRequests.Select(f => f.ReplyLine));
        Assert.Equal("Line 3: client 3's key 7 (line 1) got fault delay, then its reply (line 5).", check.FaultedRequests[0].ToString());
        Assert.Equal("Line 8: client 4's key 1 (line 7) got fault delay, and no reply followed.", check.FaultedRequests[2].ToString());
    }

    [Fact]
    public void AFaultWithNoRequestOrForAnotherKeyIsAProblem()
    {
        var lonely = Check("SYSTEM: Fault reset (3 7)");
        Assert.Equal("Line 1: a fault (reset) on client 3's key 7 with no request waiting for it.", Assert.Single(lonely.Problems));

        var wrong = Check("Client: 3 7", "SYSTEM: Fault close (3 8)");
        Assert.Equal("Line 2: a fault (close) on client 3's key 8, but its oldest request waiting is key 7 (line 1): out of order or wrong.", Assert.Single(wrong.Problems));

        var twice = Check("Client: 3 7", "SYSTEM: Fault reset (3 7)", "Server: 3 Response for the key 7 : 67");
        Assert.Equal("Line 3: a reply to client 3 with no request waiting for it.", Assert.Single(twice.Problems));
    }

    [Fact]
    public void AFaultTakesTheOldestRequestNoFaultHasTaken()
    {
        // Pipelined: 7 delayed, then 8 reset while 7's reply is still held.
        var check = Check("Client: 3 7", "Client: 3 8", "SYSTEM: Fault delay (3 7)", "SYSTEM: Fault reset (3 8)", "Server: 3 Response for the key 7 : 67");
        Assert.True(check.IsValid, string.Join("\n", check.Problems));
        Assert.Equal(new[] { "delay", "reset" }, check.FaultedRequests.Select(f => f.Fault));
    }

    [Fact]
    public void RefuseLinesCountAsFaultsWithNoRequest()
    {
        var check = Check("SYSTEM: Fault refuse (connection 1)", "Client: 3 7", "Server: 3 Response for the key 7 : 67");
        Assert.True(check.IsValid);
        Assert.Equal(1, check.Faults);
        Assert.Empty(check.FaultedRequests);
    }

    [Fact]
    public void FaultedRequestsStillCountAsSentForSequences()
    {
        var expected = new Dictionary<string, IReadOnlyList<string>> { ["3"] = new[] { "7", "8" } };
        var check = ConversationCheck.Verify(ConversationFaultTests.Lines("Client: 3 7", "SYSTEM: Fault stall (3 7)", "Client: 3 8", "Server: 3 Response for the key 8 : 90"), expected);
        Assert.True(check.IsValid, string.Join("\n", check.Problems));
    }

    [Fact]
    public void AKeyWithABackslashIsMatchedAsItsReplyLogsIt()
    {
        Assert.True(Check("Client: 1 a\\\\b", "Server: 1 Response for the key a\\\\b : slash").IsValid);
        Assert.False(Check("Client: 1 a\\\\b", "Server: 1 Response for the key ab : slash").IsValid);
    }

    [Fact]
    public void AnUnknownFaultWordAccountsForItsRequest()
    {
        Assert.True(Check("Client: 3 7", "SYSTEM: Fault bandwidth (3 7)").IsValid);
    }
}

/// <summary>Compare-KeyConversation's engine: request by request, per client.</summary>
public class ConversationComparisonTests
{
    private static ConversationDifference[] Compare(string[] reference, string[] difference, bool includeEqual = false) =>
        ConversationComparison.Compare(ConversationFaultTests.Lines(reference), ConversationFaultTests.Lines(difference), includeEqual).ToArray();

    private static readonly string[] Recorded =
    {
        "SYSTEM: Server launched", "SYSTEM: Client connected!", "Client: 1 1", "Server: 1 Response for the key 1 : 45",
        "Client: 2 4", "Server: 2 Response for the key 4 : 56", "Client: 1 2", "Server: 1 Response for the key 2 : 78",
        "SYSTEM: Client deconnected!", "SYSTEM: Server stopped",
    };

    [Fact]
    public void TheSameConversationInAnotherOrderWithTimestampsAndOtherConnectionsIsEqual()
    {
        var replayed = new[]
        {
            "2026-11-25T20:17:30.0000000Z SYSTEM: Server launched", "2026-11-25T20:17:30.1000000Z SYSTEM: Client connected!",
            "2026-11-25T20:17:30.1000000Z Client: 2 4", "2026-11-25T20:17:30.1000000Z Server: 2 Response for the key 4 : 56",
            "2026-11-25T20:17:30.1000000Z SYSTEM: Client connected!",
            "2026-11-25T20:17:30.2000000Z Client: 1 1", "2026-11-25T20:17:30.2000000Z Server: 1 Response for the key 1 : 45",
            "2026-11-25T20:17:30.3000000Z Client: 1 2", "2026-11-25T20:17:30.3000000Z Server: 1 Response for the key 2 : 78",
        };
        Assert.Empty(Compare(Recorded, replayed));
        var all = Compare(Recorded, replayed, includeEqual: true);
        Assert.Equal(new[] { ("1", 1L), ("1", 2L), ("2", 1L) }, all.Select(d => (d.ClientId, d.Request)));
        Assert.All(all, d => Assert.Equal("==", d.SideIndicator));
        Assert.Equal(7, all[1].ReferenceLine);
        Assert.Equal(8, all[1].DifferenceLine);
    }

    [Fact]
    public void ADifferentReplyIsListedWithBothReplies()
    {
        var other = Recorded.Select(l => l.Replace("key 2 : 78", "key 2 : 99")).ToArray();
        var difference = Assert.Single(Compare(Recorded, other));
        Assert.Equal(("1", 2L, "<>"), (difference.ClientId, difference.Request, difference.SideIndicator));
        Assert.Equal(("2", "2"), (difference.ReferenceKey, difference.DifferenceKey));
        Assert.Equal("Response for the key 2 : 78", difference.ReferenceReply);
        Assert.Equal("Response for the key 2 : 99", difference.DifferenceReply);
        Assert.Equal("<> client 1 request 2: 2 'Response for the key 2 : 78' / 2 'Response for the key 2 : 99'", difference.ToString());
    }

    [Fact]
    public void ARequestMissingOnOneSideIsListedOnTheOther()
    {
        var shorter = Recorded.Where(l => !l.Contains("1 2") && !l.Contains("key 2 :")).ToArray();
        var gone = Assert.Single(Compare(Recorded, shorter));
        Assert.Equal(("1", 2L, "<="), (gone.ClientId, gone.Request, gone.SideIndicator));
        Assert.Null(gone.DifferenceKey);
        Assert.Null(gone.DifferenceLine);

        var added = Assert.Single(Compare(shorter, Recorded));
        Assert.Equal("=>", added.SideIndicator);
        Assert.Equal("Response for the key 2 : 78", added.DifferenceReply);

        var newClient = Compare(Recorded, Recorded.Append("Client: 9 9").Append("Server: 9 Response for the key 9 : 10").ToArray());
        Assert.Equal(("9", 1L, "=>"), (newClient.Single().ClientId, newClient.Single().Request, newClient.Single().SideIndicator));
    }

    [Fact]
    public void ADifferentKeyAtTheSamePlaceDiffers()
    {
        var other = Recorded.Select(l => l == "Client: 1 2" ? "Client: 1 3" : l == "Server: 1 Response for the key 2 : 78" ? "Server: 1 Response for the key 3 : 23" : l).ToArray();
        var difference = Assert.Single(Compare(Recorded, other));
        Assert.Equal(("2", "3"), (difference.ReferenceKey, difference.DifferenceKey));
    }

    [Fact]
    public void FaultsAreOutcomesAndDelaysAreTheirReplies()
    {
        var faulted = Recorded.Select(l => l == "Server: 1 Response for the key 2 : 78" ? "SYSTEM: Fault reset (1 2)" : l).ToArray();
        var difference = Assert.Single(Compare(Recorded, faulted));
        Assert.Null(difference.DifferenceReply);
        Assert.Equal("reset", difference.DifferenceFault);
        Assert.Equal("Fault reset", difference.DifferenceOutcome);
        Assert.Empty(Compare(faulted, faulted));

        var delayed = Recorded.SelectMany(l => l == "Server: 1 Response for the key 2 : 78" ? new[] { "SYSTEM: Fault delay (1 2)", l } : new[] { l }).ToArray();
        Assert.Empty(Compare(Recorded, delayed));
        Assert.Equal("delay", Compare(Recorded, delayed, includeEqual: true)[1].DifferenceFault);

        var unanswered = Recorded.Where(l => l != "Server: 1 Response for the key 2 : 78").ToArray();
        var none = Assert.Single(Compare(Recorded, unanswered));
        Assert.Equal("<>", none.SideIndicator);
        Assert.Null(none.DifferenceOutcome);
    }

    [Fact]
    public void RequestsWithNoClientAreNotCompared()
    {
        Assert.Empty(Compare(Recorded, Recorded.Append("Client: garbage").Append("Server: ? Error: malformed request").ToArray()));
    }
}

/// <summary>ConvertTo-KeySequence's engine.</summary>
public class ConversationSequencesTests
{
    [Fact]
    public void OneSequencePerClientInTheOrderOfItsRequests()
    {
        var sequences = new ConversationSequences();
        var rejected = new List<int>();
        foreach (var (number, _, entry) in ConversationFaultTests.Lines("SYSTEM: Server launched", "Client: 2 4", "Client: 1 1", "Server: 1 Response for the key 1 : 45",
                     "Client: 2 5", "SYSTEM: Fault reset (2 5)", "Client: bad", "Client: 1 a\\\\b", "Client: 2 6"))
        {
            if (!sequences.Add(entry!))
            {
                rejected.Add(number);
            }
        }

        Assert.Equal(new[] { "2 4 5 6", "1 1 a\\b" }, sequences.ToStrings());
        Assert.Equal(new[] { 7 }, rejected);
        Assert.Equal(new[] { "4", "5", "6" }, Client.ClientSequence.Parse(sequences.ToStrings().First()).Keys);
    }
}
