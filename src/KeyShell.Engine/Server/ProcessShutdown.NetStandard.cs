using System;

namespace KeyShell.Engine.Server;

public static partial class ProcessShutdown
{
    /// <summary>netstandard2.0 (Windows PowerShell 5.1) has no signal API: ProcessExit alone tells.</summary>
    private static IDisposable? RegisterTermination(Action action) => null;
}
