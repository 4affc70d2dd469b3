using System;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Server;

/// <summary>The bounded waits of a stop: a stop never hangs on a connection, a loop or a subscriber that does not answer.</summary>
internal static class Bounded
{
    /// <summary>The longest a stop waits for its listener's loops, or for aborted connections to close.</summary>
    public static readonly TimeSpan StopWait = TimeSpan.FromSeconds(2);

    /// <summary>True when <paramref name="task"/> completed within <paramref name="bound"/>; false once the bound
    /// has passed or <paramref name="cancel"/> was cancelled. Never throws what the task throws.</summary>
    public static async Task<bool> WaitAsync(Task task, TimeSpan bound, CancellationToken cancel = default)
    {
        if (task.IsCompleted)
        {
            return true;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var delay = Task.Delay(bound, timeout.Token);
        var first = await Task.WhenAny(task, delay).ConfigureAwait(false);
        timeout.Cancel(); // ends the delay's timer when the task won
        return first == task;
    }
}
