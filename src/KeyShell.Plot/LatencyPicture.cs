using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using ScottPlot;
using SkiaSharp;

namespace KeyShell.Plot;

/// <summary>One measurement's latency by percentile: what HdrHistogram's percentile distribution holds.</summary>
public sealed class LatencyCurve
{
    public LatencyCurve(string label, double[] percentiles, double[] milliseconds, bool dashed = false)
    {
        if (percentiles.Length != milliseconds.Length)
        {
            throw new ArgumentException("A latency curve needs as many percentiles as values.");
        }

        Label = label;
        Percentiles = percentiles;
        Milliseconds = milliseconds;
        Dashed = dashed;
    }

    public string Label { get; }

    /// <summary>Percentiles, 0 to 100 (100 itself is left out: it has no place on the log axis).</summary>
    public double[] Percentiles { get; }

    public double[] Milliseconds { get; }

    /// <summary>Drawn dashed: the uncorrected latencies beside the corrected ones.</summary>
    public bool Dashed { get; }
}

/// <summary>One measurement's per-second timeline.</summary>
public sealed class TimelineSeries
{
    public TimelineSeries(string label, double[] seconds, double[] p50Milliseconds, double[] p99Milliseconds, double[] requestsPerSecond)
    {
        Label = label;
        Seconds = seconds;
        P50 = p50Milliseconds;
        P99 = p99Milliseconds;
        RequestsPerSecond = requestsPerSecond;
    }

    public string Label { get; }

    /// <summary>Seconds since the earliest start of the measurements drawn together.</summary>
    public double[] Seconds { get; }

    /// <summary>p50 of each second, in milliseconds (NaN for a second without a success).</summary>
    public double[] P50 { get; }

    public double[] P99 { get; }

    public double[] RequestsPerSecond { get; }
}

/// <summary>
/// Draws measurements as load testers read them: on top, the latency by percentile on HdrHistogram's log
/// axis (1/(1-percentile): 90 %, 99 %, 99.9 % ... equally spaced, as HdrHistogram's plotter draws .hgrm
/// files), one line per measurement; below, the timeline: p99 (solid) and p50 (dotted) latency and the
/// requests per second (thin, right axis) of each second.
/// </summary>
public static class LatencyPicture
{
    private static readonly double[] PercentileTicks = { 0, 90, 99, 99.9, 99.99, 99.999, 99.9999 };

    /// <summary>Writes a .png (<paramref name="svg"/> false) or an .svg of <paramref name="width"/> x <paramref name="height"/> pixels.</summary>
    public static void Save(string path, bool svg, int width, int height, string title, IReadOnlyList<LatencyCurve> curves, IReadOnlyList<TimelineSeries> timelines)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        DrawPercentiles(multiplot.GetPlot(0), title, curves);
        DrawTimeline(multiplot.GetPlot(1), timelines);
        var area = new PixelRect(0, width, height, 0);
        using var file = File.Create(path);
        if (svg)
        {
            using var canvas = SKSvgCanvas.Create(new SKRect(0, 0, width, height), file);
            multiplot.Render(canvas, area);
            return;
        }

        using var surface = SKSurface.Create(new SKImageInfo(width, height)) ?? throw new InvalidOperationException($"Cannot make a {width} x {height} picture.");
        multiplot.Render(surface.Canvas, area);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        png.SaveTo(file);
    }

    private static void DrawPercentiles(ScottPlot.Plot plot, string title, IReadOnlyList<LatencyCurve> curves)
    {
        var palette = new ScottPlot.Palettes.Category10();
        var highest = 0.0;
        for (var i = 0; i < curves.Count; i++)
        {
            var curve = curves[i];
            var xs = curve.Percentiles.Select(ToLogAxis).ToArray();
            if (xs.Length == 0)
            {
                continue;
            }

            var line = plot.Add.ScatterLine(xs, curve.Milliseconds);
            line.LegendText = curve.Label;
            line.LineWidth = 2;
            line.Color = palette.GetColor(curves.Take(i).Count(c => !c.Dashed) - (curve.Dashed ? 1 : 0));
            line.LinePattern = curve.Dashed ? LinePattern.Dashed : LinePattern.Solid;
            highest = Math.Max(highest, xs.Max());
        }

        var ticks = PercentileTicks.Where(p => ToLogAxis(p) <= Math.Max(highest, ToLogAxis(99.9)) + 1e-9).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.Select(ToLogAxis).ToArray(), ticks.Select(p => p.ToString("0.####", System.Globalization.CultureInfo.InvariantCulture) + "%").ToArray());
        plot.Axes.SetLimitsX(0, Math.Max(highest, ToLogAxis(99.9)));
        plot.Axes.SetLimitsY(0, Math.Max(0.001, curves.SelectMany(c => c.Milliseconds).DefaultIfEmpty(1).Max()) * 1.05);
        plot.Title(title);
        plot.XLabel("Percentile");
        plot.YLabel("Latency (ms)");
        if (curves.Count > 0)
        {
            plot.ShowLegend(Edge.Bottom); // below the axes: the tail, at the top right, stays in sight
        }
    }

    private static void DrawTimeline(ScottPlot.Plot plot, IReadOnlyList<TimelineSeries> timelines)
    {
        var palette = new ScottPlot.Palettes.Category10();
        for (var i = 0; i < timelines.Count; i++)
        {
            var series = timelines[i];
            if (series.Seconds.Length == 0)
            {
                continue;
            }

            // One legend entry a result, in its colour; the axis labels say which line is which.
            var color = palette.GetColor(i);
            var p99 = plot.Add.ScatterLine(series.Seconds, series.P99);
            p99.LegendText = series.Label;
            p99.Color = color;
            p99.LineWidth = 2;
            var p50 = plot.Add.ScatterLine(series.Seconds, series.P50);
            p50.Color = color;
            p50.LinePattern = LinePattern.Dotted;
            var rate = plot.Add.ScatterLine(series.Seconds, series.RequestsPerSecond);
            rate.Color = color.WithAlpha(0.35);
            rate.Axes.YAxis = plot.Axes.Right;
        }

        plot.Title("Per second");
        plot.XLabel("Seconds since the start");
        plot.YLabel("p99 (solid), p50 (dotted), ms");
        plot.Axes.Right.Label.Text = "Requests/s (faint)";
        if (timelines.Any(t => t.Seconds.Length > 0))
        {
            plot.ShowLegend(Edge.Bottom);
        }
    }

    /// <summary>HdrHistogram's axis: log10 of 1/(1-p), so 90 % is at 1, 99 % at 2, 99.9 % at 3.</summary>
    private static double ToLogAxis(double percentile) => Math.Log10(1 / (1 - Math.Min(percentile, 99.99999) / 100));
}
