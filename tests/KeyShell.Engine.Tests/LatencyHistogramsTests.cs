using System.Globalization;
using KeyShell.Engine.Client;

namespace KeyShell.Engine.Tests;

/// <summary>The load generator's use of HdrHistogram: text form, .hgrm output, allocation-free recording.</summary>
public class LatencyHistogramsTests
{
    [Fact]
    public void TheTextFormRoundTripsExactly()
    {
        var random = new Random(7);
        var histogram = LatencyHistograms.Create();
        for (var i = 0; i < 10_000; i++)
        {
            histogram.RecordValue(random.Next(50, 2_000_000));
        }

        var text = LatencyHistograms.Encode(histogram);
        var copy = LatencyHistograms.Decode(text);
        Assert.Equal(histogram.TotalCount, copy.TotalCount);
        foreach (var p in new[] { 0.0, 10, 50, 90, 99, 99.9, 99.99, 100 })
        {
            Assert.Equal(histogram.GetValueAtPercentile(p), copy.GetValueAtPercentile(p));
        }

        Assert.Equal(text, LatencyHistograms.Encode(copy));
        Assert.True(text.Length < 20_000, $"{text.Length} characters for 10,000 values over 5 decades");
    }

    [Theory]
    [InlineData("")]
    [InlineData("not base64 !")]
    [InlineData("SGVsbG8=")] // base64, but not a histogram
    public void TextThatIsNotAHistogramIsAFormatException(string text)
    {
        Assert.Throws<FormatException>(() => LatencyHistograms.Decode(text));
    }

    [Fact]
    public void AnEmptyHistogramHasNoPercentiles()
    {
        Assert.Null(LatencyHistograms.At(LatencyHistograms.Create(), 50));
    }

    [Fact]
    public void WritesHdrHistogramsPercentileDistributionInMilliseconds()
    {
        var histogram = LatencyHistograms.Create();
        for (var v = 1; v <= 1000; v++)
        {
            histogram.RecordValue(v * 10); // 10 µs to 10 ms
        }

        var culture = CultureInfo.CurrentCulture;
        string text;
        try
        {
            CultureInfo.CurrentCulture = new CultureInfo("de-DE"); // a decimal comma must not reach the file
            using var writer = new StringWriter();
            LatencyHistograms.WritePercentileDistribution(histogram, writer);
            text = writer.ToString();
            Assert.Equal("de-DE", CultureInfo.CurrentCulture.Name);
        }
        finally
        {
            CultureInfo.CurrentCulture = culture;
        }

        var hgrm = Hgrm.Parse(text);
        Assert.Equal(1000, hgrm.TotalCount);
        Assert.Equal(1000, hgrm.Rows[^1].TotalCount);
        Assert.InRange(hgrm.Max, 9.99, 10.01);
        Assert.InRange(hgrm.Mean, 5.0, 5.01);
        Assert.InRange(hgrm.ValueAt(0.5), 4.99, 5.01);
        Assert.Equal(1.0, hgrm.Rows[^1].Percentile);
    }
}

/// <summary>Reads HdrHistogram's percentile distribution (.hgrm) back: its table and its footer.</summary>
internal sealed class Hgrm
{
    public List<(double Value, double Percentile, long TotalCount)> Rows { get; } = new();

    public double Mean { get; private set; }

    public double Max { get; private set; }

    public long TotalCount { get; private set; }

    public double ValueAt(double percentile) => Rows.First(r => r.Percentile >= percentile).Value;

    public static Hgrm Parse(string text)
    {
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0).ToArray();
        Assert.Matches(@"^\s*Value\s+Percentile\s+TotalCount\s+1/\(1-Percentile\)$", lines[0]);
        var hgrm = new Hgrm();
        foreach (var line in lines.Skip(1).Where(l => !l.StartsWith('#')))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(fields.Length is 3 or 4, $"a table row of 3 or 4 fields: '{line}'");
            hgrm.Rows.Add((double.Parse(fields[0], CultureInfo.InvariantCulture), double.Parse(fields[1], CultureInfo.InvariantCulture), long.Parse(fields[2], CultureInfo.InvariantCulture)));
        }

        var footer = string.Join("\n", lines.Where(l => l.StartsWith('#')));
        var mean = System.Text.RegularExpressions.Regex.Match(footer, @"#\[Mean\s+=\s+([0-9.]+), StdDeviation\s+=\s+([0-9.]+)\]");
        var max = System.Text.RegularExpressions.Regex.Match(footer, @"#\[Max\s+=\s+([0-9.]+), Total count\s+=\s+([0-9]+)\]");
        Assert.True(mean.Success && max.Success, "the footer's #[Mean and #[Max lines:\n" + footer);
        Assert.Matches(@"#\[Buckets\s+=\s+\d+, SubBuckets\s+=\s+\d+\]", footer);
        hgrm.Mean = double.Parse(mean.Groups[1].Value, CultureInfo.InvariantCulture);
        hgrm.Max = double.Parse(max.Groups[1].Value, CultureInfo.InvariantCulture);
        hgrm.TotalCount = long.Parse(max.Groups[2].Value, CultureInfo.InvariantCulture);
        return hgrm;
    }
}
