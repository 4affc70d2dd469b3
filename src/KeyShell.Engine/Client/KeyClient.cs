using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Metrics;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Sessions;

namespace KeyShell.Engine.Client;

/// <summary>
/// Runs sequences against a server, all in parallel, each strictly in order. One timer enforces the
/// per-request timeout and runs the seed's watchdog: when replies stop coming, or a sequence loses its
/// connection, it probes the server and, if it is gone, stops every sequence at once.
/// </summary>
public sealed class KeyClient : ISequenceOwner
{
    private readonly IKeyClientObserver _observer;
    private readonly ConversationLogWriter? _log;
    private readonly ClientMetrics _metrics;
    private SequenceSession[] _sessions = Array.Empty<SequenceSession>();
    private Exception? _driverFailure;
    private long _replies;
    private int _failures;
    private int _lastReply;
    private int _probing;
    private int _lastProbe;
    private volatile bool _serverGone;

    private KeyClient(KeyClientOptions options, IPEndPoint endPoint, IKeyClientObserver observer, ConversationLogWriter? log)
    {
        Options = options;
        EndPoint = endPoint;
        DisplayEndPoint = $"{options.ComputerName}:{options.Port}";
        _observer = observer;
        _log = log;
        _metrics = new ClientMetrics(options.ComputerName, options.Port);
    }

    internal KeyClientOptions Options { get; }

    internal IPEndPoint EndPoint { get; }

    internal string DisplayEndPoint { get; }

    Framing ISequenceOwner.Framing => Options.Framing;

    ConnectionMode ISequenceOwner.Connection => Options.Connection;

    TimeSpan ISequenceOwner.Timeout => Options.Timeout;

    string ISequenceOwner.DisplayEndPoint => DisplayEndPoint;

    bool ISequenceOwner.SkipReplyCheck => Options.SkipReplyCheck;

    /// <summary>For tests: how the resolver finds addresses (a test can hold it back, to time it out).</summary>
    internal static Func<string, CancellationToken, Task<IPAddress[]>> LookUp { get; set; } = HostLookUp.GetAddressesAsync;

    /// <summary>Runs every sequence to its end, or until cancelled or the server goes away.
    /// Replies and failures go to <paramref name="observer"/> as they happen. Two sequences with one client
    /// id are a <see cref="DuplicateClientIdException"/>, before any connection.</summary>
    public static async Task<KeyClientSummary> RunAsync(
        IReadOnlyList<ClientSequence> sequences, KeyClientOptions options, IKeyClientObserver observer, CancellationToken cancellationToken = default)
    {
        if (sequences is null || options is null || observer is null)
        {
            throw new ArgumentNullException(sequences is null ? nameof(sequences) : options is null ? nameof(options) : nameof(observer));
        }

        DuplicateClientIdException.ThrowIfAny(sequences);

        var endPoint = await ResolveAsync(options.ComputerName, options.Port, cancellationToken).ConfigureAwait(false);
        var log = options.LogPath is null ? null : new ConversationLogWriter(options.LogPath);
        var client = new KeyClient(options, endPoint, observer, log);
        try
        {
            return await client.RunAllAsync(sequences, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            log?.Dispose();
        }
    }

    /// <summary>Finds the address to connect to; IPv4 first, as the seed's servers listen there.</summary>
    public static Task<IPEndPoint> ResolveAsync(string computerName, int port) => ResolveAsync(computerName, port, CancellationToken.None);

    /// <summary>Finds the address to connect to; IPv4 first. A cancel ends the lookup.</summary>
    public static async Task<IPEndPoint> ResolveAsync(string computerName, int port, CancellationToken cancellationToken)
    {
        if (port < 1 || port > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(port), port, "The port must be between 1 and 65535.");
        }

        if (IPAddress.TryParse(computerName.Trim('[', ']'), out var ip))
        {
            return new IPEndPoint(ip, port);
        }

        var addresses = await LookUp(computerName, cancellationToken).ConfigureAwait(false);
        var chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
            ?? throw new SocketException((int)SocketError.HostNotFound);
        return new IPEndPoint(chosen, port);
    }

    void ISequenceOwner.Sending(string clientId, string key)
    {
        if (_observer.WantsSendNotices)
        {
            _observer.OnSending(clientId, key);
        }
    }

    void ISequenceOwner.Deliver(KeyReply reply, byte[] request)
    {
        Interlocked.Increment(ref _replies);
        _metrics.Replied(reply.IsError, reply.Latency);
        Volatile.Write(ref _lastReply, Environment.TickCount);
        if (_log is not null)
        {
            using var lines = new ByteBuffer(128);
            var timestamp = ConversationLine.Timestamp(Options.Timestamps);
            var length = request[request.Length - 1] == (byte)'\n' ? request.Length - 1 : request.Length;
            ConversationLine.WriteRequest(lines, timestamp, request.AsSpan(0, length));
            ConversationLine.WriteReply(lines, timestamp, System.Text.Encoding.ASCII.GetBytes(reply.ClientId), System.Text.Encoding.UTF8.GetBytes(reply.Reply));
            _log.Append(lines.Span);
        }

        _observer.OnReply(reply);
    }

    void ISequenceOwner.Fail(KeyClientFailure failure)
    {
        Interlocked.Increment(ref _failures);
        _metrics.Failed();
        if (failure.Kind == FailureKind.ConnectFailed || failure.Kind == FailureKind.ConnectionLost)
        {
            _ = ProbeAsync(); // one lost connection may mean the server is gone for everyone
        }

        _observer.OnFailure(failure);
    }

    private async Task<KeyClientSummary> RunAllAsync(IReadOnlyList<ClientSequence> sequences, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        _sessions = sequences.Select(s => new SequenceSession(this, s)).ToArray();
        _lastReply = Environment.TickCount;
        WriteSystemLine("Client launched");
        using (var connector = Connector.Create(EndPoint, Options.UseEventLoops, _sessions.Length, "KeyShell client", e => _driverFailure ??= e, Options.CreateTlsSettings(), Options.EffectiveTargetHost))
        using (cancellationToken.Register(() => AbortAll(FailureKind.Cancelled)))
        using (new Timer(_ => Watch(), null, 100, 100))
        {
            foreach (var session in _sessions)
            {
                var link = connector.CreateLink(session);
                session.Link = link;
                link.Start();
            }

            await Task.WhenAll(_sessions.Select(s => s.Completion)).ConfigureAwait(false);
        }

        if (_driverFailure is { } failure)
        {
            throw new InvalidOperationException("The client's event loop failed: " + failure.Message, failure);
        }

        WriteSystemLine("Client stopped");
        return new KeyClientSummary(sequences.Count, Interlocked.Read(ref _replies), Volatile.Read(ref _failures), stopwatch.Elapsed);
    }

    private void Watch()
    {
        var now = Environment.TickCount;
        foreach (var session in _sessions)
        {
            if (session.IsLate(now))
            {
                session.Abort(FailureKind.Timeout);
            }
        }

        var interval = (int)Options.WatchdogInterval.TotalMilliseconds;
        if (unchecked(now - Volatile.Read(ref _lastReply)) >= interval && unchecked(now - Volatile.Read(ref _lastProbe)) >= interval && _sessions.Any(s => !s.IsDone))
        {
            _ = ProbeAsync();
        }
    }

    /// <summary>Connects once to the server; when that fails, the server is gone and every sequence stops.</summary>
    private async Task ProbeAsync()
    {
        if (_serverGone || Interlocked.Exchange(ref _probing, 1) == 1)
        {
            return;
        }

        Volatile.Write(ref _lastProbe, Environment.TickCount);
        try
        {
            using var socket = new Socket(EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            var connect = socket.ConnectAsync(EndPoint);
            var timeout = Math.Max(100, (int)Options.WatchdogInterval.TotalMilliseconds);
            if (await Task.WhenAny(connect, Task.Delay(timeout)).ConfigureAwait(false) != connect)
            {
                _ = connect.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
                return; // slow, not gone: the per-request timeout decides
            }

            await connect.ConfigureAwait(false);
        }
        catch (SocketException)
        {
            _serverGone = true;
            AbortAll(FailureKind.ServerGone);
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            Interlocked.Exchange(ref _probing, 0);
        }
    }

    private void AbortAll(FailureKind reason)
    {
        foreach (var session in _sessions)
        {
            if (!session.IsDone)
            {
                session.Abort(reason);
            }
        }
    }

    private void WriteSystemLine(string text)
    {
        if (_log is null)
        {
            return;
        }

        using var line = new ByteBuffer(64);
        ConversationLine.WriteSystem(line, ConversationLine.Timestamp(Options.Timestamps), text);
        _log.Append(line.Span);
    }
}
