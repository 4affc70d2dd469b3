using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using HdrHistogram;

namespace KeyShell.Engine.Client;

/// <summary>
/// Export-KeyMeasurement's text formats: .hgrm (HdrHistogram's percentile distribution, as HdrHistogram writes
/// it), .csv (a row per result) and .json (an array of results, with their timelines and distributions).
/// Times are milliseconds as numbers, instants ISO 8601 UTC, enums their names; both .csv and .json carry the
/// histograms as text, so a result read back from them (Import-Csv, ConvertFrom-Json) merges and exports again.
/// </summary>
public static class LoadExport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>The .csv columns, in order.</summary>
    public static IReadOnlyList<string> CsvColumns { get; } = new[]
    {
        "ComputerName", "Port", "Concurrency", "Connection", "Pipeline", "Framing", "Rate", "Keys", "ClientIdPrefix", "Warmup",
        "StartTime", "EndTime", "Elapsed", "Runs", "Interrupted", "Requests", "Errors", "ConnectFailed", "Timeout", "ConnectionLost",
        "ErrorReply", "UnexpectedReply", "LateRequests", "RequestsPerSecond", "AchievedRate", "Mean", "StdDev", "P50", "P90", "P99",
        "P999", "P9999", "Max", "UncorrectedMean", "UncorrectedStdDev", "UncorrectedP50", "UncorrectedP90", "UncorrectedP99",
        "UncorrectedP999", "UncorrectedP9999", "UncorrectedMax", "EncodedHistogram", "EncodedUncorrectedHistogram",
    };

    /// <summary>HdrHistogram's percentile distribution (.hgrm) of the result's corrected (or uncorrected) latencies, in milliseconds.</summary>
    public static void WriteHgrm(LoadResult result, TextWriter writer, bool uncorrected = false) =>
        LatencyHistograms.WritePercentileDistribution(uncorrected ? result.UncorrectedHistogram : result.Histogram, writer);

    public static void WriteCsv(IReadOnlyList<LoadResult> results, TextWriter writer)
    {
        writer.WriteLine(string.Join(",", CsvColumns.Select(Quote)));
        foreach (var r in results)
        {
            var fields = new[]
            {
                r.ComputerName, Text(r.Port), Text(r.Concurrency), r.Connection.ToString(), Text(r.Pipeline), r.Framing.ToString(), Text(r.Rate),
                string.Join(" ", r.Keys), r.ClientIdPrefix, Millis(r.Warmup), Iso(r.StartTime), Iso(r.EndTime), Millis(r.Elapsed), Text(r.Runs),
                r.Interrupted ? "True" : "False", Text(r.Requests), Text(r.Errors), Text(r.ConnectFailed), Text(r.Timeout), Text(r.ConnectionLost),
                Text(r.ErrorReply), Text(r.UnexpectedReply), Text(r.LateRequests), Text(r.RequestsPerSecond), Text(r.AchievedRate),
            }
                .Concat(Summary(r.Latency))
                .Concat(Summary(r.Uncorrected))
                .Concat(new[] { r.EncodedHistogram, r.EncodedUncorrectedHistogram });
            writer.WriteLine(string.Join(",", fields.Select(Quote)));
        }
    }

    public static void WriteJson(IReadOnlyList<LoadResult> results, TextWriter writer)
    {
        var json = new JsonText(writer);
        json.BeginArray();
        foreach (var r in results)
        {
            json.BeginObject();
            json.String("ComputerName", r.ComputerName);
            json.Number("Port", r.Port);
            json.Number("Concurrency", r.Concurrency);
            json.String("Connection", r.Connection.ToString());
            json.Number("Pipeline", r.Pipeline);
            json.String("Framing", r.Framing.ToString());
            json.Number("Rate", r.Rate);
            json.BeginArray("Keys");
            foreach (var key in r.Keys)
            {
                json.Item(key);
            }

            json.EndArray();
            json.String("ClientIdPrefix", r.ClientIdPrefix);
            json.Milliseconds("Warmup", r.Warmup);
            json.Instant("StartTime", r.StartTime);
            json.Instant("EndTime", r.EndTime);
            json.Milliseconds("Elapsed", r.Elapsed);
            json.Number("Runs", r.Runs);
            json.Boolean("Interrupted", r.Interrupted);
            json.Number("Requests", r.Requests);
            json.Number("Errors", r.Errors);
            foreach (LoadErrorKind kind in Enum.GetValues(typeof(LoadErrorKind)))
            {
                json.Number(kind.ToString(), r.ErrorsOf(kind));
            }

            json.Number("LateRequests", r.LateRequests);
            json.Number("RequestsPerSecond", r.RequestsPerSecond);
            json.Number("AchievedRate", r.AchievedRate);
            WriteSummary(json, null, r.Latency);
            WriteSummary(json, "Uncorrected", r.Uncorrected);
            json.BeginArray("Timeline");
            foreach (var second in r.Timeline)
            {
                json.BeginObject();
                json.Instant("Time", second.Time);
                json.Milliseconds("Elapsed", second.Elapsed);
                json.Number("Requests", second.Requests);
                json.Number("Errors", second.Errors);
                json.Number("RequestsPerSecond", second.RequestsPerSecond);
                json.Milliseconds("P50", second.P50);
                json.Milliseconds("P99", second.P99);
                json.Milliseconds("Max", second.Max);
                json.String("EncodedHistogram", second.EncodedHistogram);
                json.EndObject();
            }

            json.EndArray();
            json.BeginArray("Distribution");
            foreach (var (value, percentile, count) in Distribution(r.Histogram))
            {
                json.BeginObject();
                json.Number("Value", value);
                json.Number("Percentile", percentile);
                json.Number("TotalCount", count);
                json.EndObject();
            }

            json.EndArray();
            json.String("EncodedHistogram", r.EncodedHistogram);
            json.String("EncodedUncorrectedHistogram", r.EncodedUncorrectedHistogram);
            json.EndObject();
        }

        json.EndArray();
    }

    /// <summary>
    /// The rows of the .hgrm table: value in milliseconds, percentile (0 to 1), count up to it; the last row is
    /// the maximum at percentile 1. Empty for a histogram without values.
    /// </summary>
    public static IEnumerable<(double Milliseconds, double Percentile, long TotalCount)> Distribution(HistogramBase histogram)
    {
        if (histogram.TotalCount == 0)
        {
            yield break;
        }

        foreach (var step in histogram.Percentiles(5))
        {
            yield return (step.ValueIteratedTo / 1000.0, step.PercentileLevelIteratedTo / 100.0, step.TotalCountToThisValue);
        }
    }

    /// <summary>
    /// The latency by percentile of a result (its corrected or its uncorrected latencies), for a picture: the
    /// .hgrm rows below 100 % (100 % has no place on a log axis of 1/(1-percentile)), then the maximum at the
    /// last of them, so the line ends at the slowest request. Percentiles 0 to 100, values in milliseconds.
    /// </summary>
    public static (double[] Percentiles, double[] Milliseconds) PercentileCurve(LoadResult result, bool uncorrected)
    {
        var rows = Distribution(uncorrected ? result.UncorrectedHistogram : result.Histogram).ToArray();
        var points = rows.Where(r => r.Percentile < 1).ToList();
        if (points.Count > 0)
        {
            points.Add((rows[rows.Length - 1].Milliseconds, points[points.Count - 1].Percentile, rows[rows.Length - 1].TotalCount));
        }

        return (points.Select(p => p.Percentile * 100).ToArray(), points.Select(p => p.Milliseconds).ToArray());
    }

    private static IEnumerable<string> Summary(LatencySummary s) =>
        new[] { Millis(s.Mean), Millis(s.StdDev), Millis(s.P50), Millis(s.P90), Millis(s.P99), Millis(s.P999), Millis(s.P9999), Millis(s.Max) };

    private static void WriteSummary(JsonText json, string? name, LatencySummary s)
    {
        if (name is not null)
        {
            json.BeginObject(name);
            json.Number("Count", s.Count);
        }

        json.Milliseconds("Mean", s.Mean);
        json.Milliseconds("StdDev", s.StdDev);
        json.Milliseconds("P50", s.P50);
        json.Milliseconds("P90", s.P90);
        json.Milliseconds("P99", s.P99);
        json.Milliseconds("P999", s.P999);
        json.Milliseconds("P9999", s.P9999);
        json.Milliseconds("Max", s.Max);
        if (name is not null)
        {
            json.EndObject();
        }
    }

    private static string Text(long value) => value.ToString(Invariant);

    private static string Text(double value) => value.ToString("R", Invariant);

    private static string Text(double? value) => value is { } number ? Text(number) : string.Empty;

    private static string Millis(TimeSpan? time) => time is { } t ? Text(t.TotalMilliseconds) : string.Empty;

    private static string Iso(DateTime time) => time.ToUniversalTime().ToString("o", Invariant);

    /// <summary>RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled.</summary>
    private static string Quote(string field) =>
        field.IndexOfAny(new[] { ',', '"', '\r', '\n' }) >= 0 ? "\"" + field.Replace("\"", "\"\"") + "\"" : field;
}
