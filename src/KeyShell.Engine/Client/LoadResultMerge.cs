using System;
using System.Collections.Generic;
using System.Linq;

namespace KeyShell.Engine.Client;

/// <summary>
/// Merges load results from several generators (machines, jobs) into one: requests and errors of each kind
/// summed, the rate over the joint window (the earliest start to the latest end), percentiles read from the
/// histograms added together, never averaged (an average of p99s is no one's p99), and the timelines merged
/// second by second.
/// </summary>
public static class LoadResultMerge
{
    /// <summary>
    /// Null when the results measured the same target in the same mode; otherwise what differs, in words.
    /// Results that differ are comparable only with care: merging them is the caller's decision.
    /// </summary>
    public static string? Mismatch(IReadOnlyList<LoadResult> results)
    {
        if (results is null)
        {
            throw new ArgumentNullException(nameof(results));
        }

        var targets = results.Select(r => $"{r.ComputerName}:{r.Port}").Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        var modes = results.Select(r => $"{r.Connection}/Pipeline {r.Pipeline}/{r.Framing}").Distinct().ToArray();
        var loops = results.Select(r => r.Rate is null ? "closed loop" : "open loop (-Rate)").Distinct().ToArray();
        var differences = new List<string>();
        if (targets.Length > 1)
        {
            differences.Add("targets " + string.Join(", ", targets));
        }

        if (modes.Length > 1)
        {
            differences.Add("modes " + string.Join(", ", modes));
        }

        if (loops.Length > 1)
        {
            differences.Add("loops " + string.Join(", ", loops));
        }

        return differences.Count == 0 ? null : string.Join("; ", differences);
    }

    /// <summary>One result for all of <paramref name="results"/>; the target and mode are the first one's.</summary>
    public static LoadResult Merge(IReadOnlyList<LoadResult> results)
    {
        if (results is null || results.Count == 0)
        {
            throw new ArgumentException("There is nothing to merge.", nameof(results));
        }

        var histogram = LatencyHistograms.Create();
        var uncorrected = LatencyHistograms.Create();
        foreach (var result in results)
        {
            histogram.Add(result.Histogram);
            uncorrected.Add(result.UncorrectedHistogram);
        }

        var first = results[0];
        var rates = results.Where(r => r.Rate is not null).Select(r => r.Rate!.Value).ToArray();
        var parts = new LoadResultParts
        {
            ComputerName = first.ComputerName,
            Port = first.Port,
            Concurrency = results.Sum(r => r.Concurrency),
            Connection = first.Connection,
            Pipeline = first.Pipeline,
            Framing = first.Framing,
            Rate = rates.Length == 0 ? null : rates.Sum(),
            Keys = results.SelectMany(r => r.Keys).Distinct(StringComparer.Ordinal).ToArray(),
            ClientIdPrefix = first.ClientIdPrefix,
            Warmup = results.Max(r => r.Warmup),
            StartTime = results.Min(r => r.StartTime),
            EndTime = results.Max(r => r.EndTime),
            Runs = results.Sum(r => r.Runs),
            Interrupted = results.Any(r => r.Interrupted),
            ConnectFailed = results.Sum(r => r.ConnectFailed),
            Timeout = results.Sum(r => r.Timeout),
            ConnectionLost = results.Sum(r => r.ConnectionLost),
            ErrorReply = results.Sum(r => r.ErrorReply),
            UnexpectedReply = results.Sum(r => r.UnexpectedReply),
            LateRequests = results.Sum(r => r.LateRequests),
            Timeline = MergeTimelines(results.SelectMany(r => r.Timeline)),
        };
        return new LoadResult(parts, histogram, uncorrected);
    }

    /// <summary>Seconds of the same UTC second added up: requests, errors, and histograms (so the second's
    /// percentiles are of all its requests); the second's coverage is the longest of its parts'.</summary>
    internal static LoadSecond[] MergeTimelines(IEnumerable<LoadSecond> seconds) =>
        seconds.GroupBy(s => s.Time)
            .OrderBy(g => g.Key)
            .Select(g =>
            {
                if (g.Count() == 1)
                {
                    return g.First();
                }

                var histogram = LatencyHistograms.CreateForSecond();
                foreach (var second in g)
                {
                    histogram.Add(second.GetHistogram());
                }

                return new LoadSecond(g.Key, g.Max(s => s.Elapsed), g.Sum(s => s.Requests), g.Sum(s => s.Errors), histogram);
            })
            .ToArray();
}
