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

    /// <summary>Moves everything recorded since the last call into <paramref name="second"/> and <paramref name="total"/>.
    /// One caller at a time (the run's sampler).</summary>
    public void Drain(LoadInterval second, LoadInterval total)
    {
        foreach (var stripe in _stripes)
        {
            stripe.DrainInto(second, total);
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
        public void DrainInto(LoadInterval second, LoadInterval total)
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
                    second.Errors[i] += _errors[i];
                    total.Errors[i] += _errors[i];
                    _errors[i] = 0;
                }

                second.Late += _late;
                total.Late += _late;
                _late = 0;
            }

            second.Corrected.Add(corrected); // a second of the timeline keeps its corrected latencies only
            total.Corrected.Add(corrected);
            total.Uncorrected.Add(uncorrected);
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
    /// <param name="second">A second of the timeline: its histogram keeps 2 significant digits (see
    /// <see cref="LatencyHistograms.SecondSignificantDigits"/>), and it has no uncorrected one.</param>
    public LoadInterval(bool second = false)
    {
        Corrected = second ? LatencyHistograms.CreateForSecond() : LatencyHistograms.Create();
        Uncorrected = second ? LatencyHistograms.CreateForSecond() : LatencyHistograms.Create();
    }

    public HistogramBase Corrected { get; }

    public HistogramBase Uncorrected { get; }

    /// <summary>Counts by <see cref="LoadErrorKind"/>.</summary>
    public long[] Errors { get; } = new long[5];

    public long Late { get; set; }

    public long ErrorCount => Errors[0] + Errors[1] + Errors[2] + Errors[3] + Errors[4];

    public void Reset()
    {
        Corrected.Reset();
        Uncorrected.Reset();
        Array.Clear(Errors, 0, Errors.Length);
        Late = 0;
    }
}
