using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace KeyShell.Engine.Tests;

/// <summary>One measurement as a listener received it.</summary>
internal sealed record Measurement(string Instrument, double Value, IReadOnlyDictionary<string, object?> Tags);

/// <summary>
/// Listens to one meter's instruments and keeps the measurements tagged with one server port. The meters
/// are process-wide and other tests run in parallel: the port tells this test's measurements apart.
/// </summary>
internal sealed class MeterCollector : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<Measurement> _measurements = new();
    private readonly int _port;

    public MeterCollector(string meterName, int port)
    {
        _port = port;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == meterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Keep(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Keep(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>The sum of an instrument's measurements whose tags include every one given.</summary>
    public double Sum(string instrument, params (string Name, object Value)[] tags) => Matching(instrument, tags).Sum(m => m.Value);

    /// <summary>How many measurements an instrument recorded (for a histogram: its count).</summary>
    public int Count(string instrument, params (string Name, object Value)[] tags) => Matching(instrument, tags).Count();

    /// <summary>
    /// An observed instrument's value now (keyshell.active_connections): collects the observable instruments,
    /// as a listener's collection does, and returns what this port's server reported; null when it reported nothing.
    /// </summary>
    public double? Observe(string instrument)
    {
        var before = Matching(instrument).Count();
        _listener.RecordObservableInstruments();
        var reported = Matching(instrument).Skip(before).ToList();
        return reported.Count == 0 ? null : reported[^1].Value;
    }

    public IEnumerable<Measurement> Matching(string instrument, params (string Name, object Value)[] tags) =>
        _measurements.Where(m => m.Instrument == instrument && tags.All(t => m.Tags.TryGetValue(t.Name, out var v) && Equals(v, t.Value)));

    public void Dispose() => _listener.Dispose();

    private void Keep(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        // Other tests' servers measure meanwhile: pass over theirs without copying anything.
        var ours = false;
        foreach (var tag in tags)
        {
            ours |= tag.Key == "server.port" && Equals(tag.Value, _port);
        }

        if (!ours)
        {
            return;
        }

        var copy = new Dictionary<string, object?>();
        foreach (var tag in tags)
        {
            copy[tag.Key] = tag.Value;
        }

        _measurements.Enqueue(new Measurement(instrument.Name, value, copy));
    }
}
