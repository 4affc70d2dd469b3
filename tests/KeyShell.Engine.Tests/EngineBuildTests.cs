using System.Reflection;
using System.Runtime.Versioning;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Tests;

/// <summary>
/// This suite runs twice, against each build of the engine (see tests/KeyShell.Engine.Tests.NetStandard):
/// each run checks that the engine it loaded is the build it names.
/// </summary>
public class EngineBuildTests
{
#if ENGINE_NETSTANDARD
    private const string Expected = ".NETStandard,Version=v2.0";
#else
    private const string Expected = ".NETCoreApp,Version=v8.0";
#endif

    [Fact]
    public void TheEngineUnderTestIsTheBuildThisRunNames()
    {
        var framework = typeof(KeyServer).Assembly.GetCustomAttribute<TargetFrameworkAttribute>();
        Assert.Equal(Expected, framework?.FrameworkName);
    }

#if ENGINE_NETSTANDARD
    [Fact]
    public void TheNetStandardBuildServesFromTheAsyncPathWithDefaultOptions()
    {
        // Windows PowerShell 5.1 starts servers with the default options, which ask for event loops where they
        // run: this build has none, on any platform.
        using var server = TestSupport.StartServer(o => o.LogPath = null);
        Assert.False(server.UsesEventLoops);
        using var client = TestSupport.Connect(server.Port);
        TestSupport.Send(client, "1 1\n");
        Assert.Equal(TestSupport.Reply(1), TestSupport.ReadLines(client, 1).Single());
    }
#endif
}
