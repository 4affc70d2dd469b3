using System;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Client;

/// <summary>Waits for a wall-clock time, so that load generators on several machines start together.</summary>
internal static class StartClock
{
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(1);

    /// <summary>Returns at <paramref name="startAt"/> (at once when it is null or past); cancellable.</summary>
    public static async Task WaitUntilAsync(DateTime? startAt, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (startAt is not { } at)
        {
            return;
        }

        var utc = at.Kind == DateTimeKind.Utc ? at : at.ToUniversalTime();
        TimeSpan remaining;
        while ((remaining = utc - DateTime.UtcNow) > TimeSpan.Zero)
        {
            // In steps of at most a second, re-reading the clock: the machines agree on the wall clock (NTP
            // may adjust it meanwhile), not on a timer started when each of them was asked.
            await Task.Delay(remaining < Step ? remaining : Step, cancellationToken).ConfigureAwait(false);
        }
    }
}
