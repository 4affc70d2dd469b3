using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Metrics;
using KeyShell.Engine.Sessions;

namespace KeyShell.Engine.Client;

/// <summary>
/// Loads any server that speaks KeyShell's protocol, as redis-benchmark does for Redis: workers send
/// <c>&lt;prefix&gt;&lt;n&gt; &lt;key&gt;</c> requests over persistent or per-request connections, optionally
/// pipelined. Each worker is a <see cref="LoadSession"/> on the client driver (Linux event loops where they
/// run: a load generator that spends less of the machine leaves more of it to the server it measures). One
/// timer enforces the request timeout (no timer or token per request); the run's own loop samples what the
/// workers recorded at each whole second of the UTC clock, into the timeline and the progress.
/// </summary>
public sealed class LoadGenerator : ILoadOwner
{
    private readonly ClientMetrics _metrics;
    private readonly byte[][] _keyBytes;
    private LoadSession[] _workers = Array.Empty<LoadSession>();
    private Exception? _failure;
    private long _completed;
    private volatile LoadProgress? _progress;
    private volatile bool _interrupted;

    /// <summary>Throws <see cref="LoadOptionsException"/> when the options cannot work.</summary>
    public LoadGenerator(LoadOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        _metrics = new ClientMetrics(options.ComputerName, options.Port);
        _keyBytes = options.Keys.Select(k => Encoding.ASCII.GetBytes(k)).ToArray();
    }

    /// <summary>Measured requests finished so far (for progress).</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>What the run has measured so far, refreshed each second; null until the first second is sampled.</summary>
    public LoadProgress? Progress => _progress;

    /// <summary>What the run does (validated).</summary>
    public LoadOptions Options { get; }

    LoadOptions ILoadOwner.Options => Options;

    byte[][] ILoadOwner.KeyBytes => _keyBytes;

    long ILoadOwner.RunStart => RunStart;

    long ILoadOwner.MeasureFrom => MeasureFrom;

    long ILoadOwner.RunDeadline => RunDeadline;

    /// <summary>Stopwatch timestamp from which requests are measured (the warm-up's end).</summary>
    internal long MeasureFrom { get; set; } = long.MaxValue;

    /// <summary>Stopwatch timestamp at which the run began (after StartAt; the warm-up's start).</summary>
    internal long RunStart { get; set; }

    /// <summary>Stopwatch timestamp at which a timed run stops sending.</summary>
    internal long RunDeadline { get; set; } = long.MaxValue;

    /// <summary>
    /// Runs the load. A cancel before the first request (while waiting for StartAt) throws
    /// OperationCanceledException; a cancel after it ends the run and returns what ran, marked Interrupted.
    /// </summary>
    public async Task<LoadResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var endPoint = await KeyClient.ResolveAsync(Options.ComputerName, Options.Port, cancellationToken).ConfigureAwait(false);
        await StartClock.WaitUntilAsync(Options.StartAt, cancellationToken).ConfigureAwait(false);
        var clock = new RunClock(DateTime.UtcNow, RunStart = Stopwatch.GetTimestamp(), Options.Warmup);
        MeasureFrom = clock.MeasureFrom;
        RunDeadline = Options.Count == 0 ? clock.MeasureFrom + RunClock.Ticks(Options.Duration) : long.MaxValue;
        var recorder = new LoadRecorder(Math.Min(Options.Concurrency, Math.Min(16, Environment.ProcessorCount)));
        var workers = _workers = Enumerable.Range(0, Options.Concurrency)
            .Where(id => QuotaOf(id) > 0)
            .Select(id => new LoadSession(this, id, QuotaOf(id), recorder.StripeOf(id)))
            .ToArray();
        var sampler = new LoadSampler(recorder, clock, Options);
        Exception? driverFailure = null;
        using (var connector = Connector.Create(endPoint, Options.UseEventLoops, workers.Length, "KeyShell load", e => driverFailure ??= e, Options.CreateTlsSettings(), Options.EffectiveTargetHost))
        using (cancellationToken.Register(() => { _interrupted = true; Stop(workers); }))
        using (new Timer(_ => TimeOutLateWorkers(workers), null, 100, 100))
        {
            foreach (var worker in workers)
            {
                var link = connector.CreateLink(worker);
                worker.Link = link;
                link.Start();
            }

            var all = Task.WhenAll(workers.Select(w => w.Completion));
            while (!all.IsCompleted)
            {
                // At most a sample interval: the warm-up's progress is shown each second too.
                var wait = sampler.UntilNextSample(Stopwatch.GetTimestamp());
                wait = wait < Options.SampleInterval ? wait : Options.SampleInterval;
                if (wait > TimeSpan.Zero)
                {
                    await Task.WhenAny(all, Task.Delay(wait)).ConfigureAwait(false);
                }

                _progress = sampler.Sample(Stopwatch.GetTimestamp(), Completed) ?? _progress;
            }

            await all.ConfigureAwait(false);
        }

        if (Volatile.Read(ref _failure) is { } failure)
        {
            throw failure;
        }

        if (driverFailure is not null)
        {
            throw new InvalidOperationException("The load generator's event loop failed: " + driverFailure.Message, driverFailure);
        }

        var end = Stopwatch.GetTimestamp();
        _progress = sampler.Sample(end, Completed, last: true) ?? _progress;
        return sampler.Result(end, _interrupted);
    }

    /// <summary>Ends the run with <paramref name="failure"/> (the first one given): every worker stops.</summary>
    void ILoadOwner.Fail(Exception failure)
    {
        if (Interlocked.CompareExchange(ref _failure, failure, null) is null)
        {
            Stop(_workers);
        }
    }

    private static void Stop(LoadSession[] workers) => Array.ForEach(workers, w => w.Cancel());

    void ILoadOwner.Counted(long ok, long errors, long started, long now) => _metrics.Done(ok, errors, started, now);

    /// <summary>A worker finished a batch, <paramref name="measured"/> of its requests in the measured window.</summary>
    void ILoadOwner.Finished(int measured)
    {
        if (measured > 0)
        {
            Interlocked.Add(ref _completed, measured);
        }
    }

    private static void TimeOutLateWorkers(LoadSession[] workers)
    {
        var now = Stopwatch.GetTimestamp();
        foreach (var worker in workers)
        {
            worker.TimeOutIfLate(now);
        }
    }

    /// <summary>Worker <paramref name="id"/>'s share of the requests (all it can send in a timed run).</summary>
    private long QuotaOf(int id) =>
        Options.Count == 0 ? long.MaxValue : (Options.Count / Options.Concurrency) + (id < Options.Count % Options.Concurrency ? 1 : 0);
}

/// <summary>The run's two clocks at its start: the UTC clock (the timeline's seconds) and Stopwatch (every duration).</summary>
internal readonly struct RunClock
{
    public RunClock(DateTime startUtc, long startTimestamp, TimeSpan warmup)
    {
        MeasureFrom = startTimestamp + Ticks(warmup);
        MeasureFromUtc = startUtc + warmup;
    }

    /// <summary>Stopwatch timestamp at which the measured window begins.</summary>
    public long MeasureFrom { get; }

    public DateTime MeasureFromUtc { get; }

    public static long Ticks(TimeSpan time) => (long)(time.TotalSeconds * Stopwatch.Frequency);

    /// <summary>The UTC time of a Stopwatch timestamp of this run (the Stopwatch's: no NTP step in the middle of a run).</summary>
    public DateTime UtcOf(long timestamp) => MeasureFromUtc + TimeSpan.FromSeconds((timestamp - MeasureFrom) / (double)Stopwatch.Frequency);
}
