// A MeterListener for PowerShell tests and the benchmark, compiled with Add-Type: listener callbacks run
// on the server's threads, where no script block can run. It sums each instrument's measurements per
// outcome (or error.type) for one server port. Loaded into the default load context while the engine is
// in KeyShell's private one: it sees the engine's meters only if both use the framework's Meter type.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Metrics;

public sealed class KeyShellMeterProbe : IDisposable
{
    private readonly MeterListener _listener = new MeterListener();
    private readonly ConcurrentDictionary<string, double> _sums = new ConcurrentDictionary<string, double>();
    private readonly ConcurrentDictionary<string, double> _current = new ConcurrentDictionary<string, double>();
    private readonly int _port;

    /// <summary>Listens to <paramref name="meterName"/>; keeps measurements tagged with <paramref name="port"/> (0: all).</summary>
    public KeyShellMeterProbe(string meterName, int port)
    {
        _port = port;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == meterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) => Keep(instrument.Name, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, state) => Keep(instrument.Name, value, tags));
        _listener.Start();
    }

    /// <summary>The sum of an instrument, over every tag value ("keyshell.requests"), or for one ("keyshell.requests|error").</summary>
    public double Sum(string key)
    {
        double sum;
        return _sums.TryGetValue(key, out sum) ? sum : 0;
    }

    /// <summary>An observed instrument's value now (keyshell.active_connections): what its last collection reported, or 0.</summary>
    public double Current(string instrument)
    {
        _current.Clear();
        _listener.RecordObservableInstruments();
        double value;
        return _current.TryGetValue(instrument, out value) ? value : 0;
    }

    /// <summary>How many measurements an instrument recorded (a histogram's count).</summary>
    public double Count(string instrument) => Sum(instrument + "#");

    public void Dispose() => _listener.Dispose();

    private void Keep(string instrument, double value, ReadOnlySpan<KeyValuePair<string, object>> tags)
    {
        string detail = null;
        var port = 0;
        foreach (var tag in tags)
        {
            if (tag.Key == "server.port") port = Convert.ToInt32(tag.Value);
            else if (tag.Key == "keyshell.outcome" || tag.Key == "error.type") detail = Convert.ToString(tag.Value);
        }

        if (_port != 0 && port != _port) return;
        _current[instrument] = value;
        _sums.AddOrUpdate(instrument, value, (_, sum) => sum + value);
        _sums.AddOrUpdate(instrument + "#", 1, (_, count) => count + 1);
        if (detail != null) _sums.AddOrUpdate(instrument + "|" + detail, value, (_, sum) => sum + value);
    }
}
