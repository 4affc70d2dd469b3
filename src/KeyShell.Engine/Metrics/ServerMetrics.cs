using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using KeyShell.Engine.Faults;

namespace KeyShell.Engine.Metrics;

/// <summary>Why a connection was turned away or ended by the server (the <c>error.type</c> tag).</summary>
internal enum RejectionReason
{
    /// <summary>The server was at its connection limit.</summary>
    MaxConnections,

    /// <summary>The connection sent no complete request within the idle timeout.</summary>
    Idle,

    /// <summary>The connection arrived while the server was stopping.</summary>
    Stopping,

    /// <summary>The connection did not read its replies within the idle timeout.</summary>
    Stalled,

    /// <summary>The peer's address matches no -AllowedAddress rule.</summary>
    Address,

    /// <summary>Mutual TLS: the client's certificate was missing or not of the authorities.</summary>
    Certificate,

    /// <summary>The TLS handshake failed or did not finish in time.</summary>
    Handshake,

    /// <summary>As many TLS handshakes as allowed were in progress.</summary>
    MaxHandshakes,
}

/// <summary>
/// A server's instruments on the meter <c>KeyShell.Server</c>, named as Kestrel names its own, so that
/// dotnet-counters and OpenTelemetry read them with no KeyShell-specific setup. The Meter and its
/// instruments are static (one per process, as the Metrics guidance asks); each server holds its tags,
/// built once, so a measurement allocates nothing. With no listener a call is a check of the
/// instrument's (empty) subscriptions.
/// <para>
/// <c>keyshell.active_connections</c> is observed, not counted: at each collection it reports every live
/// server's connection count. An up-down counter's deltas reach a listener only from the moment it
/// attaches, so one attached to a busy server (the usual case) saw nothing while its connections were open,
/// and a negative number once they closed.
/// </para>
/// </summary>
internal sealed class ServerMetrics
{
    public const string MeterName = "KeyShell.Server";

    private static readonly Meter Meter = new(MeterName, typeof(ServerMetrics).Assembly.GetName().Version?.ToString());

    // The servers whose connections are observed; weak, so a server that was never stopped cannot be kept alive by its meter.
    private static readonly List<WeakReference<ServerMetrics>> Observed = new();

    private static readonly ObservableUpDownCounter<long> ActiveConnections = Meter.CreateObservableUpDownCounter(
        "keyshell.active_connections", ObserveActiveConnections, "{connection}", "Connections open now.");

    private static readonly Counter<long> Connections = Meter.CreateCounter<long>(
        "keyshell.connections", "{connection}", "Connections accepted and served (rejected ones not included).");

    private static readonly Counter<long> Requests = Meter.CreateCounter<long>(
        "keyshell.requests", "{request}", "Requests answered, by outcome: ok, or error (an \"Error:\" reply).");

    private static readonly Counter<long> RejectedConnections = Meter.CreateCounter<long>(
        "keyshell.rejected_connections", "{connection}", "Connections turned away or closed by the server, by error.type.");

    private static readonly Counter<long> FaultsApplied = Meter.CreateCounter<long>(
        "keyshell.faults", "{fault}", "Faults applied (requests faulted, connections refused by a Refuse fault), by type.");

    private static readonly Histogram<double> ConnectionDuration = Meter.CreateHistogram<double>(
        "keyshell.connection.duration", "s", "How long connections stayed open, from accept to close.");

    private readonly KeyValuePair<string, object?>[] _server;
    private readonly KeyValuePair<string, object?>[] _ok;
    private readonly KeyValuePair<string, object?>[] _error;
    private readonly KeyValuePair<string, object?>[][] _rejected;
    private readonly KeyValuePair<string, object?>[][] _faults;
    private readonly Func<int?> _activeConnections;

    /// <param name="address">The server's bound address (the server.address tag).</param>
    /// <param name="port">The server's bound port (the server.port tag).</param>
    /// <param name="activeConnections">The server's open connections now; null once it has stopped (it is then no longer observed).</param>
    public ServerMetrics(string address, int port, Func<int?> activeConnections)
    {
        _activeConnections = activeConnections ?? throw new ArgumentNullException(nameof(activeConnections));
        _server = Tags(address, port);
        _ok = Tags(address, port, Tag("keyshell.outcome", "ok"));
        _error = Tags(address, port, Tag("keyshell.outcome", "error"));
        _rejected = new[]
        {
            Tags(address, port, Tag("error.type", "max_connections")),
            Tags(address, port, Tag("error.type", "idle")),
            Tags(address, port, Tag("error.type", "stopping")),
            Tags(address, port, Tag("error.type", "stalled")),
            Tags(address, port, Tag("error.type", "address_not_allowed")),
            Tags(address, port, Tag("error.type", "tls_client_certificate_refused")),
            Tags(address, port, Tag("error.type", "tls_handshake_failed")),
            Tags(address, port, Tag("error.type", "max_handshakes")),
        };
        var types = (FaultType[])Enum.GetValues(typeof(FaultType));
        _faults = new KeyValuePair<string, object?>[types.Length][];
        foreach (var type in types)
        {
            _faults[(int)type] = Tags(address, port, Tag("type", KeyFault.WordOf(type)));
        }

        lock (Observed)
        {
            Observed.RemoveAll(r => !r.TryGetTarget(out var metrics) || metrics._activeConnections() is null);
            Observed.Add(new WeakReference<ServerMetrics>(this));
        }
    }

    /// <summary>A connection was admitted.</summary>
    public void ConnectionOpened() => Connections.Add(1, _server);

    /// <summary>A connection opened at <paramref name="openedAt"/> (a Stopwatch timestamp) has closed.</summary>
    public void ConnectionClosed(long openedAt)
    {
        if (ConnectionDuration.Enabled)
        {
            ConnectionDuration.Record((Stopwatch.GetTimestamp() - openedAt) / (double)Stopwatch.Frequency, _server);
        }
    }

    /// <summary>One read's requests: one Add per outcome per read, not one per request.</summary>
    public void RequestsAnswered(int requests, int errors)
    {
        if (requests > errors)
        {
            Requests.Add(requests - errors, _ok);
        }

        if (errors > 0)
        {
            Requests.Add(errors, _error);
        }
    }

    /// <summary>A fault of <paramref name="type"/> was applied.</summary>
    public void FaultApplied(FaultType type) => FaultsApplied.Add(1, _faults[(int)type]);

    public void ConnectionRejected(RejectionReason reason) => RejectedConnections.Add(1, _rejected[(int)reason]);

    /// <summary>At each collection: every live server's connection count, with its tags; stopped servers drop out.</summary>
    private static IEnumerable<Measurement<long>> ObserveActiveConnections()
    {
        lock (Observed)
        {
            var measurements = new List<Measurement<long>>(Observed.Count);
            for (var i = Observed.Count - 1; i >= 0; i--)
            {
                if (Observed[i].TryGetTarget(out var metrics) && metrics._activeConnections() is { } count)
                {
                    measurements.Add(new Measurement<long>(count, metrics._server));
                }
                else
                {
                    Observed.RemoveAt(i);
                }
            }

            return measurements;
        }
    }

    private static KeyValuePair<string, object?> Tag(string name, object value) => new(name, value);

    private static KeyValuePair<string, object?>[] Tags(string address, int port, params KeyValuePair<string, object?>[] more)
    {
        var tags = new List<KeyValuePair<string, object?>> { Tag("server.address", address), Tag("server.port", port) };
        tags.AddRange(more);
        return tags.ToArray();
    }
}
