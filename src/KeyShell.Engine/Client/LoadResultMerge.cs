using System;
using System.Collections.Generic;
using System.Linq;

namespace KeyShell.Engine.Client;

/// <summary>
/// Merges load results from several generators (machines, jobs) into one: requests and errors summed,
/// the rate over the joint window (the earliest start to the latest end), and percentiles read from the
/// merged histogram, never averaged (an average of p99s is no one's p99).
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
        var differences = new List<string>();
        if (targets.Length > 1)
        {
            differences.Add("targets " + string.Join(", ", targets));
        }

        if (modes.Length > 1)
        {
            differences.Add("modes " + string.Join(", ", modes));
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

        var latency = new LatencyHistogram();
        foreach (var result in results)
        {
            latency.Add(result.Latency);
        }

        return LoadResult.Merged(
            results[0],
            results.Sum(r => r.Concurrency),
            results.Sum(r => r.Requests),
            results.Sum(r => r.Errors),
            results.Min(r => r.StartTime),
            results.Max(r => r.EndTime),
            latency,
            results.Sum(r => r.Runs));
    }
}
