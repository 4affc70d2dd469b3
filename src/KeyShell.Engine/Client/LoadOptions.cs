using System;

namespace KeyShell.Engine.Client;

/// <summary>What a load run does (Measure-KeyServer's parameters).</summary>
public sealed partial class LoadOptions
{
    public string ComputerName { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 8080;

    /// <summary>Workers, each with its own connection (or its own stream of connections).</summary>
    public int Concurrency { get; set; } = 8;

    /// <summary>Requests in all; 0 runs for <see cref="Duration"/> instead.</summary>
    public long Count { get; set; } = 100_000;

    public TimeSpan Duration { get; set; } = TimeSpan.FromSeconds(10);

    public ConnectionMode Connection { get; set; } = ConnectionMode.Persistent;

    /// <summary>Requests in flight per connection (Persistent, line framing).</summary>
    public int Pipeline { get; set; } = 1;

    public Framing Framing { get; set; } = Framing.Line;

    /// <summary>How long a request (or a pipelined batch) may wait for its replies: past it, its requests
    /// count as errors and the worker reconnects.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>When to send the first request (wall clock; null: at once), so that generators on several
    /// machines start together. A time already past starts at once.</summary>
    public DateTime? StartAt { get; set; }

    /// <summary>For tests: false runs the workers on the portable async path even where event loops run.</summary>
    internal bool UseEventLoops { get; set; } = true;
}
