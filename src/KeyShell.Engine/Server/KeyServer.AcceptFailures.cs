using System;
using System.Net.Sockets;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Server;

public sealed partial class KeyServer
{
    private long _acceptFailures;
    private int _lastAcceptFailureReport;

    /// <summary>
    /// Reports a failed accept: the first at once, then at most one a second while the shortage lasts
    /// (acceptors retry every 10 ms, and a report per retry would bury everything else).
    /// </summary>
    internal void ReportAcceptFailure(SocketException error)
    {
        var failures = Interlocked.Increment(ref _acceptFailures);
        var now = Environment.TickCount;
        var last = Volatile.Read(ref _lastAcceptFailureReport);
        if (failures > 1 && unchecked(now - last) < 1000)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _lastAcceptFailureReport, now, last) == last)
        {
            Diagnostics.LogWarning(
                DiagnosticEvents.AcceptFailed,
                error,
                "Accepting a connection failed: {Error} ({Failures} failed accepts so far; out of descriptors or memory?). The server keeps serving and tries again every 10 ms.",
                error.SocketErrorCode,
                failures);
            Interlocked.Increment(ref _internalErrors);
            RaiseError(0, null, error);
        }
    }
}
