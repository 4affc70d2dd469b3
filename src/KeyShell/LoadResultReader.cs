using System;
using System.Management.Automation;
using KeyShell.Engine.Client;

namespace KeyShell;

/// <summary>
/// Turns what Merge-KeyMeasurement receives into LoadResults: a live one as it is; a deserialized one
/// (Invoke-Command, Receive-Job: a property bag of strings, numbers and arrays) rebuilt from its properties.
/// </summary>
internal static class LoadResultReader
{
    public static LoadResult Read(PSObject input)
    {
        if (input.BaseObject is LoadResult live)
        {
            return live;
        }

        try
        {
            return new LoadResult(
                Get<string>(input, nameof(LoadResult.ComputerName)),
                Get<int>(input, nameof(LoadResult.Port)),
                Get<int>(input, nameof(LoadResult.Concurrency)),
                Get<ConnectionMode>(input, nameof(LoadResult.Connection)),
                Get<int>(input, nameof(LoadResult.Pipeline)),
                Get<Framing>(input, nameof(LoadResult.Framing)),
                Get<long>(input, nameof(LoadResult.Requests)),
                Get<long>(input, nameof(LoadResult.Errors)),
                Get<DateTime>(input, nameof(LoadResult.StartTime)),
                Get<DateTime>(input, nameof(LoadResult.EndTime)),
                Get<TimeSpan>(input, nameof(LoadResult.Max)),
                Get<long[]>(input, nameof(LoadResult.LatencyBuckets)),
                Get<long[]>(input, nameof(LoadResult.LatencyCounts)),
                input.Properties[nameof(LoadResult.Runs)]?.Value is { } runs ? LanguagePrimitives.ConvertTo<int>(runs) : 1);
        }
        catch (PSInvalidCastException e)
        {
            throw new ArgumentException($"This is not a Measure-KeyServer result: {e.Message}", e);
        }
    }

    private static T Get<T>(PSObject input, string name)
    {
        var value = input.Properties[name]?.Value
            ?? throw new ArgumentException($"This is not a Measure-KeyServer result (it has no {name}): {input}");
        return LanguagePrimitives.ConvertTo<T>(value);
    }
}
