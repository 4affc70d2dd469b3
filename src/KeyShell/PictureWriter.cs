using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KeyShell.Engine.Client;

namespace KeyShell;

/// <summary>
/// Turns results into the picture's data (latency by percentile, the per-second timeline) and hands them to
/// KeyShell.Plot, which is loaded only here, and only on PowerShell 7.
/// </summary>
internal static class PictureWriter
{
    /// <summary>False, with the reason, where no picture can be drawn: Windows PowerShell 5.1 ships no drawing library.</summary>
    public static bool IsSupported(out string why)
    {
        if (RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal))
        {
            why = "Drawing a .png or .svg needs PowerShell 7: Windows PowerShell 5.1 has no drawing library in KeyShell. Export .hgrm, .csv or .json here (they hold everything), then the picture from pwsh: Import-Csv <file> | Export-KeyMeasurement <picture>.";
            return false;
        }

        why = string.Empty;
        return true;
    }

    public static void Write(string path, bool svg, int width, int height, IReadOnlyList<LoadResult> results)
    {
        var labels = Labels(results);
        var curves = new List<(string Label, double[] Percentiles, double[] Milliseconds, bool Dashed)>();
        var origin = results.Min(r => r.StartTime);
        origin = new DateTime(origin.Ticks - (origin.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc);
        var timelines = new List<(string Label, double[] Seconds, double[] P50, double[] P99, double[] Rate)>();
        for (var i = 0; i < results.Count; i++)
        {
            var result = results[i];
            curves.Add(Curve(labels[i], result, uncorrected: false));
            if (result.Rate is not null)
            {
                curves.Add(Curve(labels[i] + " (uncorrected)", result, uncorrected: true));
            }

            var seconds = result.Timeline;
            timelines.Add((labels[i], seconds.Select(s => (s.Time - origin).TotalSeconds).ToArray(),
                seconds.Select(s => s.P50?.TotalMilliseconds ?? double.NaN).ToArray(),
                seconds.Select(s => s.P99?.TotalMilliseconds ?? double.NaN).ToArray(),
                seconds.Select(s => s.RequestsPerSecond).ToArray()));
        }

        var title = results.Count == 1 ? $"Latency by percentile: {labels[0]}" : $"Latency by percentile: {results.Count} measurements";
        Draw(path, svg, width, height, title, curves, timelines);
    }

    /// <summary>In a method of its own, so that KeyShell.Plot is loaded only when a picture is drawn.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Draw(string path, bool svg, int width, int height, string title,
        List<(string Label, double[] Percentiles, double[] Milliseconds, bool Dashed)> curves,
        List<(string Label, double[] Seconds, double[] P50, double[] P99, double[] Rate)> timelines) =>
        Plot.LatencyPicture.Save(path, svg, width, height, title,
            curves.Select(c => new Plot.LatencyCurve(c.Label, c.Percentiles, c.Milliseconds, c.Dashed)).ToArray(),
            timelines.Select(t => new Plot.TimelineSeries(t.Label, t.Seconds, t.P50, t.P99, t.Rate)).ToArray());

    /// <summary>Through the engine: this assembly touches no HdrHistogram type (it lives in the private load context).</summary>
    private static (string, double[], double[], bool) Curve(string label, LoadResult result, bool uncorrected)
    {
        var (percentiles, milliseconds) = LoadExport.PercentileCurve(result, uncorrected);
        return (label, percentiles, milliseconds, uncorrected);
    }

    /// <summary>Each result's name in the legend: its target and mode; made unique with a number when two would read alike.</summary>
    private static string[] Labels(IReadOnlyList<LoadResult> results)
    {
        var labels = results.Select(r =>
            $"{r.ComputerName}:{r.Port} {r.Connection} x{r.Concurrency}{(r.Pipeline > 1 ? $" pipeline {r.Pipeline}" : string.Empty)}{(r.Rate is { } rate ? $" at {rate:0.##}/s" : string.Empty)}{(r.Runs > 1 ? $" ({r.Runs} runs)" : string.Empty)}").ToArray();
        for (var i = 0; i < labels.Length; i++)
        {
            if (labels.Count(l => l == labels[i]) > 1)
            {
                var same = labels[i];
                var n = 1;
                for (var j = i; j < labels.Length; j++)
                {
                    if (labels[j] == same)
                    {
                        labels[j] = $"{same} #{n++}";
                    }
                }
            }
        }

        return labels;
    }
}
