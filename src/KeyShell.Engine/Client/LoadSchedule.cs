using System;
using System.Diagnostics;

namespace KeyShell.Engine.Client;

/// <summary>
/// When a load worker's batches are due. A closed loop has no schedule: a batch is due when the last one is
/// answered. An open loop (-Rate) spreads the rate over the workers at fixed intervals, as wrk2 does: worker
/// n of N sends a batch every N·pipeline/rate seconds, the workers offset by 1/N of that from each other, so
/// the requests of the whole run come evenly. Stopwatch timestamps throughout.
/// </summary>
internal sealed class LoadSchedule
{
    private readonly long _interval;
    private long _next;

    /// <param name="options">The run's options (Rate null: a closed loop).</param>
    /// <param name="worker">The worker's number, 0 to Concurrency - 1.</param>
    /// <param name="start">When the run began (the warm-up's start).</param>
    public LoadSchedule(LoadOptions options, int worker, long start)
    {
        if (options.Rate is not { } rate)
        {
            return;
        }

        var seconds = options.Concurrency * options.Pipeline / rate;
        _interval = Math.Max(1, (long)(seconds * Stopwatch.Frequency));
        _next = start + (long)((double)_interval * worker / options.Concurrency);
        LateAfter = Math.Max(_interval, Stopwatch.Frequency / 500);
    }

    /// <summary>True for an open loop: batches are due at their times, whatever the server does.</summary>
    public bool IsOpen => _interval > 0;

    /// <summary>How much after its time a batch is late: its connection's interval, and at least 2 ms (a
    /// timer's own slack, a millisecond or so, is not lateness).</summary>
    public long LateAfter { get; }

    /// <summary>When the next batch is due (open loop), and the schedule moves on; <paramref name="now"/> in a closed loop.</summary>
    public long Next(long now)
    {
        if (!IsOpen)
        {
            return now;
        }

        var due = _next;
        _next += _interval;
        return due;
    }
}
