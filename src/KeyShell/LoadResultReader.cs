using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using KeyShell.Engine.Client;

namespace KeyShell;

/// <summary>
/// Turns what Merge-KeyMeasurement and Export-KeyMeasurement receive into LoadResults: a live one as it is;
/// any other (a deserialized result from Invoke-Command or Receive-Job, a row of Import-Csv, an object of
/// ConvertFrom-Json from an exported .csv or .json) rebuilt from its parts: the target and mode, the window,
/// the error counts, the histograms as text and the timeline. Times are TimeSpans (deserialized) or
/// milliseconds (exported); instants are DateTimes or ISO 8601 text.
/// </summary>
internal static class LoadResultReader
{
    /// <summary>Reads an input of <paramref name="cmdlet"/>, or stops it with InvalidMeasurement, the input as
    /// the target: a merge or an export that silently left a result out would report wrong totals.</summary>
    public static LoadResult ReadOrStop(PSCmdlet cmdlet, PSObject input)
    {
        try
        {
            return Read(input);
        }
        catch (ArgumentException e)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidMeasurement, ErrorCategory.InvalidData, input));
            throw; // not reached: ThrowTerminatingError throws
        }
    }

    public static LoadResult Read(PSObject input)
    {
        if (input.BaseObject is LoadResult live)
        {
            return live;
        }

        try
        {
            return new LoadResult(new LoadResultParts
            {
                ComputerName = Get<string>(input, nameof(LoadResult.ComputerName)),
                Port = Get<int>(input, nameof(LoadResult.Port)),
                Concurrency = Get<int>(input, nameof(LoadResult.Concurrency)),
                Connection = Get<ConnectionMode>(input, nameof(LoadResult.Connection)),
                Pipeline = Get<int>(input, nameof(LoadResult.Pipeline)),
                Framing = Get<Framing>(input, nameof(LoadResult.Framing)),
                Rate = Optional(input, nameof(LoadResult.Rate)) is { } rate ? Number(rate) : null,
                Keys = Optional(input, nameof(LoadResult.Keys)) is { } keys ? Strings(keys) : null,
                ClientIdPrefix = Optional(input, nameof(LoadResult.ClientIdPrefix))?.ToString(),
                Warmup = Optional(input, nameof(LoadResult.Warmup)) is { } warmup ? Time(warmup) : TimeSpan.Zero,
                StartTime = Instant(Required(input, nameof(LoadResult.StartTime))),
                EndTime = Instant(Required(input, nameof(LoadResult.EndTime))),
                Runs = Optional(input, nameof(LoadResult.Runs)) is { } runs ? LanguagePrimitives.ConvertTo<int>(runs) : 1,
                Interrupted = Optional(input, nameof(LoadResult.Interrupted)) is { } interrupted && Boolean(interrupted),
                ConnectFailed = Get<long>(input, nameof(LoadResult.ConnectFailed)),
                Timeout = Get<long>(input, nameof(LoadResult.Timeout)),
                ConnectionLost = Get<long>(input, nameof(LoadResult.ConnectionLost)),
                ErrorReply = Get<long>(input, nameof(LoadResult.ErrorReply)),
                UnexpectedReply = Get<long>(input, nameof(LoadResult.UnexpectedReply)),
                LateRequests = Optional(input, nameof(LoadResult.LateRequests)) is { } late ? LanguagePrimitives.ConvertTo<long>(late) : 0,
                EncodedHistogram = Get<string>(input, nameof(LoadResult.EncodedHistogram)),
                EncodedUncorrectedHistogram = Optional(input, nameof(LoadResult.EncodedUncorrectedHistogram))?.ToString(),
                Timeline = Optional(input, nameof(LoadResult.Timeline)) is { } timeline ? Seconds(timeline) : null,
            });
        }
        catch (Exception e) when (e is PSInvalidCastException || e is FormatException || e is InvalidCastException || e is OverflowException)
        {
            throw new ArgumentException($"This is not a Measure-KeyServer result: {e.Message}", e);
        }
    }

    private static LoadSecond[] Seconds(object timeline) =>
        Items(timeline).Select(item =>
        {
            var second = PSObject.AsPSObject(item);
            return new LoadSecond(
                Instant(Required(second, nameof(LoadSecond.Time))),
                Time(Required(second, nameof(LoadSecond.Elapsed))),
                Get<long>(second, nameof(LoadSecond.Requests)),
                Get<long>(second, nameof(LoadSecond.Errors)),
                Get<string>(second, nameof(LoadSecond.EncodedHistogram)));
        }).ToArray();

    private static IEnumerable<object> Items(object value) =>
        PSObject.AsPSObject(value).BaseObject is IEnumerable items and not string
            ? items.Cast<object>().Where(i => i is not null)
            : new[] { value };

    private static string[] Strings(object value)
    {
        var baseValue = PSObject.AsPSObject(value).BaseObject;
        return baseValue is string text
            ? text.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries) // an exported .csv holds them space-separated
            : Items(value).Select(i => i.ToString()!).ToArray();
    }

    /// <summary>A TimeSpan as it is; a number (or its text) as milliseconds, as exports write them.</summary>
    private static TimeSpan Time(object value) =>
        PSObject.AsPSObject(value).BaseObject is TimeSpan time ? time : TimeSpan.FromTicks((long)Math.Round(Number(value) * TimeSpan.TicksPerMillisecond));

    private static double Number(object value) =>
        PSObject.AsPSObject(value).BaseObject is string text
            ? double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)
            : LanguagePrimitives.ConvertTo<double>(value);

    private static DateTime Instant(object value) =>
        PSObject.AsPSObject(value).BaseObject is string text
            ? DateTime.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind)
            : LanguagePrimitives.ConvertTo<DateTime>(value);

    /// <summary>A Boolean, or its text ('False' is false: PowerShell's own conversion takes any non-empty text as true).</summary>
    private static bool Boolean(object value) =>
        PSObject.AsPSObject(value).BaseObject is string text ? bool.Parse(text) : LanguagePrimitives.ConvertTo<bool>(value);

    private static T Get<T>(PSObject input, string name) => LanguagePrimitives.ConvertTo<T>(Required(input, name));

    private static object Required(PSObject input, string name) =>
        Optional(input, name) ?? throw new ArgumentException($"This is not a Measure-KeyServer result (it has no {name}): {input}");

    /// <summary>The property's value; null when it is missing or empty (an exported .csv writes null as an empty field).</summary>
    private static object? Optional(PSObject input, string name) =>
        input.Properties[name]?.Value is { } value && !(PSObject.AsPSObject(value).BaseObject is string { Length: 0 }) ? value : null;
}
