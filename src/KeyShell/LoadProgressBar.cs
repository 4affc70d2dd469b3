using System;
using System.Diagnostics;
using System.Management.Automation;
using KeyShell.Engine.Client;

namespace KeyShell;

/// <summary>
/// Measure-KeyServer's progress bar, written by the pipeline thread from what the run samples each second:
/// the wait for -StartAt, the warm-up, then the rate of the last second, the errors and the p99 so far.
/// </summary>
internal sealed class LoadProgressBar
{
    private readonly Cmdlet _cmdlet;
    private readonly LoadGenerator _generator;
    private readonly DateTime _startUtc;
    private readonly int? _duration;
    private readonly long _count;
    private readonly int _activityId = 2;
    private readonly string _activity;
    private readonly Stopwatch _sinceLast = Stopwatch.StartNew();
    private LoadProgress? _shown;
    private bool _written;

    public LoadProgressBar(Cmdlet cmdlet, LoadGenerator generator, DateTime? startAtUtc, int? duration, long count, int warmupSec)
    {
        _cmdlet = cmdlet;
        _generator = generator;
        _startUtc = startAtUtc is { } at && at > DateTime.UtcNow ? at : DateTime.UtcNow;
        _duration = duration;
        _count = count;
        var loop = generator.Options.Rate is { } rate ? $"{rate:N0} requests/s over" : "closed loop,";
        _activity = $"Measure-KeyServer: {loop} {generator.Options.Concurrency} {generator.Options.Connection} connections to {generator.Options.ComputerName}:{generator.Options.Port}{(warmupSec > 0 ? $", {warmupSec} s warm-up" : string.Empty)}";
        if (_startUtc > DateTime.UtcNow)
        {
            ReportWaiting();
        }
    }

    /// <summary>Called every quarter second or so; writes when there is something new to show.</summary>
    public void Update()
    {
        if (_startUtc > DateTime.UtcNow)
        {
            ReportWaiting();
            return;
        }

        var progress = _generator.Progress;
        if (progress is null || (ReferenceEquals(progress, _shown) && _sinceLast.ElapsedMilliseconds < 1000))
        {
            return;
        }

        _shown = progress;
        _sinceLast.Restart();
        if (progress.WarmupLeft > TimeSpan.Zero)
        {
            Write(Record($"Warming up: {Math.Ceiling(progress.WarmupLeft.TotalSeconds):0} s left, nothing measured yet", -1));
            return;
        }

        var percent = _duration is { } seconds
            ? (int)Math.Min(100, progress.Elapsed.TotalSeconds * 100 / seconds)
            : (int)Math.Min(100, progress.Completed * 100 / Math.Max(1, _count));
        var p99 = progress.P99 is { } value ? $"{value.TotalMilliseconds:0.###} ms" : "none yet";
        Write(Record($"{progress.LastSecondRate:N0} requests/s, {progress.Requests:N0} requests, {progress.Errors:N0} errors, p99 {p99}", percent));
    }

    public void Complete()
    {
        if (!_written)
        {
            return;
        }

        var done = Record("Done", 100);
        done.RecordType = ProgressRecordType.Completed;
        Write(done);
    }

    private void ReportWaiting() =>
        Write(Record($"Waiting to start at {_startUtc.ToLocalTime():T} (in {Math.Ceiling((_startUtc - DateTime.UtcNow).TotalSeconds):0} s)", -1));

    /// <summary>A record of its own each time: hosts and streams that keep records keep each as it was.</summary>
    private ProgressRecord Record(string status, int percent) =>
        new(_activityId, _activity, status) { PercentComplete = percent };

    private void Write(ProgressRecord record)
    {
        _written = true;
        _cmdlet.WriteProgress(record);
    }
}
