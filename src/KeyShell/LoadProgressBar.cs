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
    private readonly ProgressRecord _record;
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
        _record = new ProgressRecord(2, "Measure-KeyServer", $"{loop} {generator.Options.Concurrency} {generator.Options.Connection} connections to {generator.Options.ComputerName}:{generator.Options.Port}{(warmupSec > 0 ? $", {warmupSec} s warm-up" : string.Empty)}");
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
            _record.PercentComplete = -1;
            _record.StatusDescription = $"Warming up: {Math.Ceiling(progress.WarmupLeft.TotalSeconds):0} s left, nothing measured yet";
        }
        else
        {
            _record.PercentComplete = _duration is { } seconds
                ? (int)Math.Min(100, progress.Elapsed.TotalSeconds * 100 / seconds)
                : (int)Math.Min(100, progress.Completed * 100 / Math.Max(1, _count));
            var p99 = progress.P99 is { } value ? $"{value.TotalMilliseconds:0.###} ms" : "none yet";
            _record.StatusDescription = $"{progress.LastSecondRate:N0} requests/s, {progress.Requests:N0} requests, {progress.Errors:N0} errors, p99 {p99}";
        }

        Write(_record);
    }

    public void Complete()
    {
        if (!_written)
        {
            return;
        }

        _record.RecordType = ProgressRecordType.Completed;
        Write(_record);
    }

    /// <summary>A record of its own (not the run's, which goes on changing): hosts and streams that keep records keep this one as it was.</summary>
    private void ReportWaiting() =>
        Write(new ProgressRecord(_record.ActivityId, _record.Activity, $"Waiting to start at {_startUtc.ToLocalTime():T} (in {Math.Ceiling((_startUtc - DateTime.UtcNow).TotalSeconds):0} s)")
        {
            PercentComplete = -1,
        });

    private void Write(ProgressRecord record)
    {
        _written = true;
        _cmdlet.WriteProgress(record);
    }
}
