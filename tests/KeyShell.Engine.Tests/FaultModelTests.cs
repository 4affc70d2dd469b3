using KeyShell.Engine.Faults;

namespace KeyShell.Engine.Tests;

/// <summary>Faults as definitions: defaults, what each type takes, and the errors for what it does not.</summary>
public class FaultDefinitionTests
{
    [Fact]
    public void EachTypeTakesItsDefaults()
    {
        var delay = new KeyFault(FaultType.Delay);
        Assert.Equal(1000, delay.DelayMilliseconds);
        Assert.Equal(0, delay.JitterMilliseconds);
        Assert.Null(delay.ByteCount);
        Assert.Equal("*", delay.ClientId);
        Assert.Null(delay.Key);
        Assert.Equal(1.0, delay.Probability);
        Assert.Equal(1, delay.Every);
        Assert.Equal(0, delay.After);
        Assert.Equal(FaultDirection.Reply, delay.Direction);

        var slice = new KeyFault(FaultType.Slice);
        Assert.Equal(10, slice.DelayMilliseconds);
        Assert.Equal(1, slice.ByteCount);
        Assert.Null(new KeyFault(FaultType.Truncate).ByteCount);
        Assert.Equal(16, new KeyFault(FaultType.Garbage).ByteCount);
        Assert.Equal(FaultDirection.Request, new KeyFault(FaultType.Refuse).Direction);
        foreach (var type in new[] { FaultType.Stall, FaultType.Reset, FaultType.Close, FaultType.Refuse })
        {
            var fault = new KeyFault(type);
            Assert.Null(fault.DelayMilliseconds);
            Assert.Null(fault.ByteCount);
        }
    }

    [Theory]
    [InlineData(FaultType.Reset, "DelayMilliseconds")]
    [InlineData(FaultType.Stall, "JitterMilliseconds")]
    [InlineData(FaultType.Delay, "ByteCount")]
    [InlineData(FaultType.Close, "ByteCount")]
    public void AParameterTheTypeDoesNotTakeIsAnError(FaultType type, string parameter)
    {
        var e = Assert.Throws<FaultDefinitionException>(() => parameter switch
        {
            "DelayMilliseconds" => new KeyFault(type, delayMilliseconds: 5),
            "JitterMilliseconds" => new KeyFault(type, jitterMilliseconds: 5),
            _ => new KeyFault(type, byteCount: 5),
        });
        Assert.Equal(parameter, e.ParamName);
        Assert.Equal(5, e.Value);
        Assert.Contains($"a {type} fault does not take it", e.Message);
        Assert.DoesNotContain("(Parameter", e.Message);
    }

    [Theory]
    [InlineData("DelayMilliseconds", -1)]
    [InlineData("DelayMilliseconds", 3_600_001)]
    [InlineData("JitterMilliseconds", -1)]
    [InlineData("ByteCount", 0)]
    [InlineData("ByteCount", 1_048_577)]
    [InlineData("Every", 0)]
    [InlineData("After", -1)]
    public void OutOfRangeValuesAreErrorsNamingTheParameter(string parameter, int value)
    {
        var e = Assert.Throws<FaultDefinitionException>(() => parameter switch
        {
            "DelayMilliseconds" => new KeyFault(FaultType.Delay, delayMilliseconds: value),
            "JitterMilliseconds" => new KeyFault(FaultType.Delay, jitterMilliseconds: value),
            "ByteCount" => new KeyFault(FaultType.Slice, byteCount: value),
            "Every" => new KeyFault(FaultType.Reset, every: value),
            _ => new KeyFault(FaultType.Reset, after: value),
        });
        Assert.Equal(parameter, e.ParamName);
        Assert.StartsWith(parameter + " must be", e.Message);
    }

    [Fact]
    public void TruncateMayKeepNoByteAtAllButGarbageSendsAtLeastOne()
    {
        Assert.Equal(0, new KeyFault(FaultType.Truncate, byteCount: 0).ByteCount);
        Assert.Throws<FaultDefinitionException>(() => new KeyFault(FaultType.Garbage, byteCount: 0));
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void AProbabilityOutsideZeroToOneIsAnError(double probability)
    {
        var e = Assert.Throws<FaultDefinitionException>(() => new KeyFault(FaultType.Reset, probability: probability));
        Assert.Equal("Probability", e.ParamName);
    }

    [Fact]
    public void RefuseCannotBeAimedByClientKeyOrReplyDirection()
    {
        Assert.Equal("ClientId", Assert.Throws<FaultDefinitionException>(() => new KeyFault(FaultType.Refuse, clientId: "3")).ParamName);
        Assert.Equal("Key", Assert.Throws<FaultDefinitionException>(() => new KeyFault(FaultType.Refuse, key: new[] { "7" })).ParamName);
        Assert.Equal("Direction", Assert.Throws<FaultDefinitionException>(() => new KeyFault(FaultType.Refuse, direction: FaultDirection.Reply)).ParamName);
        Assert.Equal("*", new KeyFault(FaultType.Refuse, clientId: "*", direction: FaultDirection.Request).ClientId);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a b")]
    [InlineData("é")]
    public void KeysMustBeProtocolTokens(string key)
    {
        var e = Assert.Throws<FaultDefinitionException>(() => new KeyFault(FaultType.Reset, key: new[] { "1", key }));
        Assert.Equal("Key", e.ParamName);
        Assert.Equal(key, e.Value);
    }

    [Fact]
    public void AnEmptyKeySetIsAnErrorAndDuplicatesCollapse()
    {
        Assert.Throws<FaultDefinitionException>(() => new KeyFault(FaultType.Reset, key: Array.Empty<string>()));
        Assert.Equal(new[] { "7", "8" }, new KeyFault(FaultType.Reset, key: new[] { "7", "8", "7" }).Key);
    }

    [Theory]
    [InlineData("[ab")]
    [InlineData("[]")]
    [InlineData("[z-a]")]
    [InlineData("client\u00e9")]
    public void InvalidClientPatternsAreErrors(string pattern)
    {
        var e = Assert.Throws<FaultDefinitionException>(() => new KeyFault(FaultType.Reset, clientId: pattern));
        Assert.Equal("ClientId", e.ParamName);
        Assert.Equal(pattern, e.Value);
    }

    [Fact]
    public void WordsAreTheTypesInLowerCase()
    {
        Assert.Equal("reset", new KeyFault(FaultType.Reset).Word);
        Assert.Equal("garbage", KeyFault.WordOf(FaultType.Garbage));
    }

    [Fact]
    public void ToStringSummarisesTheFault()
    {
        var fault = new KeyFault(FaultType.Delay, 200, 50, clientId: "3", key: new[] { "7" }, probability: 0.5, every: 2, after: 1, direction: FaultDirection.Request);
        Assert.Equal("Delay 200±50 ms, Request, client 3, key 7, after 1, every 2, probability 0.5", fault.ToString());
        Assert.Equal("Refuse, every 3", new KeyFault(FaultType.Refuse, every: 3).ToString());
    }
}

/// <summary>Client id wildcards, as -like reads them.</summary>
public class ClientIdPatternTests
{
    [Theory]
    [InlineData("*", "anything", true)]
    [InlineData("3", "3", true)]
    [InlineData("3", "33", false)]
    [InlineData("worker-*", "worker-12", true)]
    [InlineData("worker-*", "worker-", true)]
    [InlineData("worker-*", "Worker-1", true)]
    [InlineData("worker-*", "boss-1", false)]
    [InlineData("*-1", "a-b-1", true)]
    [InlineData("*-1", "a-b-12", false)]
    [InlineData("?", "7", true)]
    [InlineData("?", "17", false)]
    [InlineData("[12]", "2", true)]
    [InlineData("[12]", "3", false)]
    [InlineData("[a-c]x", "Bx", true)]
    [InlineData("[a-c]x", "dx", false)]
    [InlineData("a*b*c", "aXbYbZc", true)]
    [InlineData("a*b*c", "aXbYbZ", false)]
    [InlineData("`*", "*", true)]
    [InlineData("`*", "x", false)]
    [InlineData("a`[1]", "a[1]", true)]
    [InlineData("**", "", true)]
    [InlineData("x*", "", false)]
    public void MatchesAsLikeDoes(string pattern, string clientId, bool expected) =>
        Assert.Equal(expected, new ClientIdPattern(pattern).IsMatch(clientId));

    [Fact]
    public void StarAloneMatchesAll()
    {
        Assert.True(new ClientIdPattern("*").MatchesAll);
        Assert.False(new ClientIdPattern("*a").MatchesAll);
    }
}
