using System;
using System.Collections.Generic;
using System.Diagnostics;

namespace KeyShell.Engine.Client;

/// <summary>
/// Turns what the workers record into the run's timeline and totals: at each whole second of the UTC clock
/// (from the end of the warm-up) it drains the recorder into that second, and the second into the totals.
/// One caller: the run's loop.
/// </summary>
internal sealed class LoadSampler
{
    private readonly LoadRecorder _recorder;
    private readonly RunClock _clock;
    private readonly LoadOptions _options;
    private readonly long _interval;
    private readonly LoadInterval _second = new(second: true);
    private readonly LoadInterval _total = new();
    private readonly List<LoadSecond> _timeline = new();
    private long _secondStart;   // Stopwatch timestamp the current second's sampling began
    private DateTime _label;     // the whole UTC second it belongs to
    private long _nextSample;    // Stopwatch timestamp of the next whole second

    public LoadSampler(LoadRecorder recorder, RunClock clock, LoadOptions options)
    {
        _recorder = recorder;
        _clock = clock;
        _options = options;
        _interval = RunClock.Ticks(options.SampleInterval);
        _secondStart = clock.MeasureFrom;
        _label = WholeSecond(clock.MeasureFromUtc);
        _nextSample = clock.MeasureFrom + RunClock.Ticks(_label + options.SampleInterval - clock.MeasureFromUtc);
    }

    /// <summary>How long until the next sample is due (the warm-up's end first).</summary>
    public TimeSpan UntilNextSample(long now) => TimeSpan.FromSeconds(Math.Max(0, _nextSample - now) / (double)Stopwatch.Frequency);

    /// <summary>
    /// Samples when a second is due (or, with <paramref name="last"/>, the run's last part): the second's
    /// figures join the timeline and the totals. Returns the progress so far, or null when nothing was due.
    /// </summary>
    public LoadProgress? Sample(long now, long completed, bool last = false)
    {
        if (now < _clock.MeasureFrom)
        {
            return new LoadProgress(TimeSpan.Zero, TimeSpan.FromSeconds((_clock.MeasureFrom - now) / (double)Stopwatch.Frequency), 0, 0, 0, null, completed);
        }

        if (!last && now < _nextSample)
        {
            return null;
        }

        _recorder.Drain(_second, _total);
        var elapsed = TimeSpan.FromSeconds((now - _secondStart) / (double)Stopwatch.Frequency);
        var requests = _second.Corrected.TotalCount + _second.ErrorCount;
        if (requests > 0 || elapsed >= TimeSpan.FromMilliseconds(1))
        {
            _timeline.Add(new LoadSecond(_label, elapsed, requests, _second.ErrorCount, _second.Corrected));
        }

        _second.Reset();
        _secondStart = now;

        // The next second: the one after this, or the one the clock is in when sampling fell behind by more.
        var next = _label + _options.SampleInterval;
        var current = WholeSecond(_clock.UtcOf(now));
        _label = current > next ? current : next;
        _nextSample = _clock.MeasureFrom + RunClock.Ticks(_label + _options.SampleInterval - _clock.MeasureFromUtc);

        var measured = TimeSpan.FromSeconds((now - _clock.MeasureFrom) / (double)Stopwatch.Frequency);
        return new LoadProgress(measured, TimeSpan.Zero, _total.Corrected.TotalCount + _total.ErrorCount, _total.ErrorCount,
            elapsed > TimeSpan.Zero ? requests / elapsed.TotalSeconds : 0, LatencyHistograms.At(_total.Corrected, 99), completed);
    }

    /// <summary>The run's result: its totals, from the end of the warm-up to <paramref name="end"/>.</summary>
    public LoadResult Result(long end, bool interrupted)
    {
        var parts = new LoadResultParts
        {
            ComputerName = _options.ComputerName,
            Port = _options.Port,
            Concurrency = _options.Concurrency,
            Connection = _options.Connection,
            Pipeline = _options.Pipeline,
            Framing = _options.Framing,
            Rate = _options.Rate,
            Keys = _options.Keys,
            ClientIdPrefix = _options.ClientIdPrefix,
            Warmup = _options.Warmup,
            StartTime = _clock.MeasureFromUtc,
            EndTime = _clock.UtcOf(Math.Max(end, _clock.MeasureFrom)),
            Interrupted = interrupted,
            ConnectFailed = _total.Errors[(int)LoadErrorKind.ConnectFailed],
            Timeout = _total.Errors[(int)LoadErrorKind.Timeout],
            ConnectionLost = _total.Errors[(int)LoadErrorKind.ConnectionLost],
            ErrorReply = _total.Errors[(int)LoadErrorKind.ErrorReply],
            UnexpectedReply = _total.Errors[(int)LoadErrorKind.UnexpectedReply],
            LateRequests = _total.Late,
            Timeline = _timeline,
        };
        return new LoadResult(parts, _total.Corrected, _total.Uncorrected); // the run is over: nothing records into them any more
    }

    /// <summary>The whole (UTC) second <paramref name="time"/> is in, for the default one-second interval.</summary>
    private DateTime WholeSecond(DateTime time) =>
        new(time.Ticks - (time.Ticks % _options.SampleInterval.Ticks), DateTimeKind.Utc);
}

/// <summary>What a run has measured so far, for its progress bar.</summary>
public sealed class LoadProgress
{
    public LoadProgress(TimeSpan elapsed, TimeSpan warmupLeft, long requests, long errors, double lastSecondRate, TimeSpan? p99, long completed)
    {
        Elapsed = elapsed;
        WarmupLeft = warmupLeft;
        Requests = requests;
        Errors = errors;
        LastSecondRate = lastSecondRate;
        P99 = p99;
        Completed = completed;
    }

    /// <summary>Time measured so far (after the warm-up).</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Time left in the warm-up; zero once measuring.</summary>
    public TimeSpan WarmupLeft { get; }

    public long Requests { get; }

    public long Errors { get; }

    /// <summary>Requests per second in the last second sampled.</summary>
    public double LastSecondRate { get; }

    /// <summary>The 99th percentile so far (corrected); null before a success.</summary>
    public TimeSpan? P99 { get; }

    /// <summary>Measured requests finished (counted by the workers, so a little ahead of <see cref="Requests"/>).</summary>
    public long Completed { get; }
}
