using System;
using System.Runtime.InteropServices;

namespace KeyShell.Engine.Server;

public static partial class ProcessShutdown
{
    /// <summary>Runs the action on SIGTERM; the signal's default action (ending the process) follows.</summary>
    private static IDisposable? RegisterTermination(Action action) =>
        PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => action());
}
