using System.Runtime.CompilerServices;

namespace KeyShell.Engine.Tests;

internal static class TestAssemblySetup
{
    /// <summary>
    /// Many tests drive the server with blocking sockets from pool threads (64 at a time, beside other test
    /// classes running in parallel). The pool grows by about one thread per half second, so without this the
    /// server's own continuations would queue behind blocked test clients and the tests would measure that.
    /// </summary>
    [ModuleInitializer]
    internal static void RaiseThreadPoolMinimum() => ThreadPool.SetMinThreads(256, 256);
}
