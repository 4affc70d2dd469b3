using System;
using System.Collections.Generic;
using System.Linq;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Client;

/// <summary>What a load run does (Measure-KeyServer's parameters).</summary>
public sealed partial class LoadOptions
{
    /// <summary>The seed's keys, 0 to 9: what a load sends unless told otherwise.</summary>
    public static IReadOnlyList<string> SeedKeys { get; } = Enumerable.Range(0, 10).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    public string ComputerName { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 8080;

    /// <summary>Workers, each with its own connection (or its own stream of connections).</summary>
    public int Concurrency { get; set; } = 8;

    /// <summary>Requests in all (measured ones: the warm-up's do not count); 0 runs for <see cref="Duration"/> instead.</summary>
    public long Count { get; set; } = 100_000;

    /// <summary>How long a timed run measures, after its warm-up.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromSeconds(10);

    public ConnectionMode Connection { get; set; } = ConnectionMode.Persistent;

    /// <summary>Requests in flight per connection (Persistent, line framing).</summary>
    public int Pipeline { get; set; } = 1;

    public Framing Framing { get; set; } = Framing.Line;

    /// <summary>How long a request (or a pipelined batch) may wait for its replies: past it, its requests
    /// count as errors (Timeout) and the worker reconnects.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>When to send the first request (wall clock; null: at once), so that generators on several
    /// machines start together. A time already past starts at once.</summary>
    public DateTime? StartAt { get; set; }

    /// <summary>Requests per second in all (open loop), spread over the connections at fixed intervals;
    /// null: closed loop (each worker sends again as soon as it has its replies).</summary>
    public double? Rate { get; set; }

    /// <summary>The keys the workers send, in turn (each worker starts at another one).</summary>
    public IReadOnlyList<string> Keys { get; set; } = SeedKeys;

    /// <summary>Worker n's client id is this prefix followed by n.</summary>
    public string ClientIdPrefix { get; set; } = "w";

    /// <summary>How long the load runs before anything is measured (requests that end in it count nowhere).</summary>
    public TimeSpan Warmup { get; set; } = TimeSpan.Zero;

    /// <summary>Counts any one-line reply that does not start with <c>Error:</c> as a success, for servers whose
    /// handlers compute replies of their own form.</summary>
    public bool SkipReplyCheck { get; set; }

    /// <summary>For tests: false runs the workers on the portable async path even where event loops run.</summary>
    internal bool UseEventLoops { get; set; } = true;

    /// <summary>For tests: how often progress is sampled (a second: the timeline's resolution).</summary>
    internal TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Throws <see cref="LoadOptionsException"/> naming the first option that cannot work, with its value.</summary>
    public void Validate()
    {
        Check(Concurrency >= 1, nameof(Concurrency), Concurrency, "at least 1 worker is needed");
        Check(Count >= 0, nameof(Count), Count, "the count of requests cannot be negative");
        Check(Pipeline >= 1, nameof(Pipeline), Pipeline, "at least 1 request must be in flight per connection");
        Check(Timeout > TimeSpan.Zero, nameof(Timeout), Timeout, "the timeout must be above 0");
        Check(Count > 0 || Duration > TimeSpan.Zero, nameof(Duration), Duration, "a timed run needs a duration above 0");
        Check(Warmup >= TimeSpan.Zero, nameof(Warmup), Warmup, "the warm-up cannot be negative");
        Check(Pipeline == 1 || (Connection == ConnectionMode.Persistent && Framing == Framing.Line), nameof(Pipeline), Pipeline,
            $"pipelining needs persistent connections and line framing (this run has {Connection} connections and {Framing} framing)");
        if (Rate is { } rate)
        {
            Check(rate > 0 && !double.IsInfinity(rate) && !double.IsNaN(rate), nameof(Rate), rate, "the rate must be a number of requests per second above 0");
        }

        Check(Keys is { Count: > 0 }, nameof(Keys), Keys, "at least one key is needed");
        foreach (var key in Keys!)
        {
            Check(!string.IsNullOrEmpty(key) && key.Length <= 512 && RequestParser.IsToken(System.Text.Encoding.UTF8.GetBytes(key)), nameof(Keys), key,
                $"'{key}' is not a key: 1 to 512 visible ASCII characters, no spaces");
        }

        var lastId = ClientIdPrefix + (Concurrency - 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Check(ClientIdPrefix is not null && (ClientIdPrefix.Length == 0 || RequestParser.IsClientId(ClientIdPrefix)) && RequestParser.IsClientId(lastId), nameof(ClientIdPrefix), ClientIdPrefix,
            $"the client ids ('{lastId}' for the last worker) must be 1 to 64 visible ASCII characters, no spaces");
    }

    private static void Check(bool condition, string option, object? value, string problem)
    {
        if (!condition)
        {
            throw new LoadOptionsException(option, value, char.ToUpperInvariant(problem[0]) + problem.Substring(1) + ".");
        }
    }
}

/// <summary>A load that cannot run as asked: which option (named as Measure-KeyServer's parameter) and the value given.</summary>
public sealed class LoadOptionsException : ArgumentException
{
    public LoadOptionsException(string option, object? value, string message)
        : base(message)
    {
        Option = option;
        Value = value;
    }

    /// <summary>The option's name, as Measure-KeyServer's parameter is named (Timeout is -TimeoutSec, Warmup -WarmupSec).</summary>
    public string Option { get; }

    /// <summary>The value given for it.</summary>
    public object? Value { get; }
}
