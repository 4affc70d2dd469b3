using System;
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
/// <c>w&lt;n&gt; &lt;key&gt;</c> requests over persistent or per-request connections, optionally pipelined.
/// Each worker is a <see cref="LoadSession"/> on the client driver (Linux event loops where they run: a
/// load generator that spends less of the machine leaves more of it to the server it measures). One
/// timer enforces the request timeout (no timer or token per request).
/// </summary>
public sealed class LoadGenerator : ILoadOwner
{
    private readonly ClientMetrics _metrics;
    private LoadSession[] _workers = Array.Empty<LoadSession>();
    private Exception? _failure;
    private long _completed;
    private long _errors;

    public LoadGenerator(LoadOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        _metrics = new ClientMetrics(options.ComputerName, options.Port);
        if (options.Concurrency < 1 || options.Pipeline < 1 || options.Count < 0 || options.Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Concurrency and Pipeline must be at least 1, Count at least 0, Timeout above 0.");
        }

        if (options.Pipeline > 1 && (options.Connection != ConnectionMode.Persistent || options.Framing != Framing.Line))
        {
            throw new ArgumentException("Pipelining needs persistent connections and line framing.", nameof(options));
        }
    }

    /// <summary>Requests finished so far (for progress).</summary>
    public long Completed => Interlocked.Read(ref _completed);

    internal LoadOptions Options { get; }

    LoadOptions ILoadOwner.Options => Options;

    public async Task<LoadResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var endPoint = await KeyClient.ResolveAsync(Options.ComputerName, Options.Port, cancellationToken).ConfigureAwait(false);
        var histograms = Enumerable.Range(0, Options.Concurrency).Select(_ => new LatencyHistogram()).ToArray();
        await StartClock.WaitUntilAsync(Options.StartAt, cancellationToken).ConfigureAwait(false);
        var startTime = DateTime.UtcNow;
        var stopwatch = Stopwatch.StartNew();
        var runDeadline = Options.Count == 0 ? Stopwatch.GetTimestamp() + (long)(Options.Duration.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        var workers = _workers = Enumerable.Range(0, Options.Concurrency)
            .Where(id => QuotaOf(id) > 0)
            .Select(id => new LoadSession(this, id, QuotaOf(id), runDeadline, histograms[id]))
            .ToArray();
        Exception? driverFailure = null;
        using (var connector = Connector.Create(endPoint, Options.UseEventLoops, workers.Length, "KeyShell load", e => driverFailure ??= e, Options.CreateTlsSettings(), Options.EffectiveTargetHost))
        using (cancellationToken.Register(() => Array.ForEach(workers, w => w.Cancel())))
        using (new Timer(_ => TimeOutLateWorkers(workers), null, 100, 100))
        {
            foreach (var worker in workers)
            {
                var link = connector.CreateLink(worker);
                worker.Link = link;
                link.Start();
            }

            await Task.WhenAll(workers.Select(w => w.Completion)).ConfigureAwait(false);
        }

        if (Volatile.Read(ref _failure) is { } failure)
        {
            throw failure;
        }

        if (driverFailure is not null)
        {
            throw new InvalidOperationException("The load generator's event loop failed: " + driverFailure.Message, driverFailure);
        }

        var elapsed = stopwatch.Elapsed;
        var all = new LatencyHistogram();
        foreach (var histogram in histograms)
        {
            all.Add(histogram);
        }

        return new LoadResult(Options, Completed, Interlocked.Read(ref _errors), startTime, elapsed, all);
    }

    /// <summary>Ends the run with <paramref name="failure"/> (the first one given): every worker stops.</summary>
    void ILoadOwner.Fail(Exception failure)
    {
        if (Interlocked.CompareExchange(ref _failure, failure, null) is null)
        {
            Array.ForEach(_workers, w => w.Cancel());
        }
    }

    /// <summary>Worker <paramref name="id"/>'s ten requests, one per key, in the options' framing.</summary>
    byte[][] ILoadOwner.RequestsOf(int id)
    {
        var terminator = Options.Framing == Framing.Line ? "\n" : string.Empty;
        return Enumerable.Range(0, 10).Select(k => Encoding.ASCII.GetBytes($"w{id} {(id + k) % 10}{terminator}")).ToArray();
    }

    /// <summary>Counts one batch's successes and failures into the result (and the latency, per request).</summary>
    void ILoadOwner.Record(LatencyHistogram latency, long started, int count, int errors)
    {
        var micros = (Stopwatch.GetTimestamp() - started) * 1_000_000 / Stopwatch.Frequency;
        for (var i = 0; i < count; i++)
        {
            latency.Record(micros);
        }

        _metrics.BatchDone(count, errors, started);
        Interlocked.Add(ref _completed, count);
        if (errors > 0)
        {
            Interlocked.Add(ref _errors, errors);
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
