using System;
using HdrHistogram;

namespace KeyShell.Engine.Client;

/// <summary>
/// Where the workers record what their requests did: successes with their latencies (from the time each
/// request was due, and from the time it was sent), errors by kind, and sends that were late. Recording
/// allocates nothing. Workers are spread over a few stripes, each with its own lock and histograms, so
/// that workers on different threads (one event loop each) do not contend; <see cref="Drain"/> moves what
/// the stripes hold into an interval, once a second, without stopping them.
/// </summary>
internal sealed class LoadRecorder
{
    private readonly Stripe[] _stripes;

    public LoadRecorder(int stripes)
    {
        _stripes = new Stripe[Math.Max(1, stripes)];
        for (var i = 0; i < _stripes.Length; i++)
        {
            _stripes[i] = new Stripe();
        }
    }

    /// <summary>The stripe worker <paramref name="worker"/> records into (workers are dealt to event loops the same way).</summary>
    public Stripe StripeOf(int worker) => _stripes[worker % _stripes.Length];

    /// <summary>Moves everything recorded since the last call into <paramref name="interval"/>.</summary>
    public void Drain(LoadInterval interval)
    {
        foreach (var stripe in _stripes)
        {
            stripe.DrainInto(interval);
        }
    }

    internal sealed class Stripe
    {
        private readonly object _gate = new();
        private HistogramBase _corrected = LatencyHistograms.Create();
        private HistogramBase _uncorrected = LatencyHistograms.Create();
        private HistogramBase _spareCorrected = LatencyHistograms.Create();
        private HistogramBase _spareUncorrected = LatencyHistograms.Create();
        private readonly long[] _errors = new long[5];
        private long _late;

        /// <summary><paramref name="count"/> successes that share their latencies (one read's replies), in microseconds.</summary>
        public void Succeeded(long count, long correctedMicros, long uncorrectedMicros)
        {
            if (count <= 0)
            {
                return;
            }

            var corrected = LatencyHistograms.Clamp(correctedMicros);
            var uncorrected = LatencyHistograms.Clamp(Math.Min(uncorrectedMicros, correctedMicros));
            lock (_gate)
            {
                _corrected.RecordValueWithCount(corrected, count);
                _uncorrected.RecordValueWithCount(uncorrected, count);
            }
        }

        public void Failed(LoadErrorKind kind, long count)
        {
            if (count <= 0)
            {
                return;
            }

            lock (_gate)
            {
                _errors[(int)kind] += count;
            }
        }

        public void Late(long count)
        {
            lock (_gate)
            {
                _late += count;
            }
        }

        /// <summary>Swaps the histograms out under the lock (two reference swaps), then adds them up outside it.</summary>
        public void DrainInto(LoadInterval interval)
        {
            HistogramBase corrected, uncorrected;
            lock (_gate)
            {
                corrected = _corrected;
                uncorrected = _uncorrected;
                _corrected = _spareCorrected;
                _uncorrected = _spareUncorrected;
                for (var i = 0; i < _errors.Length; i++)
                {
                    interval.Errors[i] += _errors[i];
                    _errors[i] = 0;
                }

                interval.Late += _late;
                _late = 0;
            }

            interval.Corrected.Add(corrected);
            interval.Uncorrected.Add(uncorrected);
            corrected.Reset();
            uncorrected.Reset();
            lock (_gate)
            {
                _spareCorrected = corrected;
                _spareUncorrected = uncorrected;
            }
        }
    }
}

/// <summary>What the workers recorded over one stretch of the run (a second of the timeline, or all of it).</summary>
internal sealed class LoadInterval
{
    public HistogramBase Corrected { get; } = LatencyHistograms.Create();

    public HistogramBase Uncorrected { get; } = LatencyHistograms.Create();

    /// <summary>Counts by <see cref="LoadErrorKind"/>.</summary>
    public long[] Errors { get; } = new long[5];

    public long Late { get; set; }

    public long ErrorCount => Errors[0] + Errors[1] + Errors[2] + Errors[3] + Errors[4];

    public void Add(LoadInterval other)
    {
        Corrected.Add(other.Corrected);
        Uncorrected.Add(other.Uncorrected);
        for (var i = 0; i < Errors.Length; i++)
        {
            Errors[i] += other.Errors[i];
        }

        Late += other.Late;
    }

    public void Reset()
    {
        Corrected.Reset();
        Uncorrected.Reset();
        Array.Clear(Errors, 0, Errors.Length);
        Late = 0;
    }
}
