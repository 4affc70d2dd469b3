using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Metrics;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Sessions;
using KeyShell.Engine.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KeyShell.Engine.Server;

/// <summary>Where a server is in its life.</summary>
public enum KeyServerState
{
    Running,
    Stopping,
    Stopped,
}

/// <summary>
/// A running key-lookup server: a listener with a large backlog, an acceptor that hands each connection
/// to a driver (Linux event loops, or async streams), and the table of live connections with its
/// counters. <see cref="StopAsync"/> closes the listener, lets in-flight requests finish within the
/// shutdown timeout, closes what is left, flushes the log.
/// </summary>
public sealed partial class KeyServer : IDisposable
{
    private readonly Socket _listener;
    private readonly ConversationLoggerProvider? _logProvider;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly ILogger? _logger;
    private readonly TaskCompletionSource<bool> _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _stopLock = new();
    private readonly CancellationTokenSource _stoppingSource = new();
    private readonly CancellationTokenSource _abandonSource = new();
    private readonly KeyServerOptions _options;
    private IAcceptor? _acceptor;
    private Task? _stop;
    private int _state;

    private KeyServer(KeyServerOptions options, Socket listener, ConversationLoggerProvider? logProvider)
    {
        _options = options;
        _listener = listener;
        _logProvider = logProvider;
        var bound = (IPEndPoint)listener.LocalEndPoint!;
        Address = bound.Address.ToString();
        Port = bound.Port;
        LogPath = logProvider?.Writer.Path;
        var diagnostics = options.Diagnostics is null && options.DiagnosticQueue is null
            ? NullLogger.Instance
            : (ILogger)new DiagnosticsLogger(options.Diagnostics, options.DiagnosticQueue);
        InitializeSecurity(options);
        // The meter asks for the count at each collection (a listener may come before the table is made).
        Events = new ServerEvents(this, new ServerMetrics(Address, Port, () => State == KeyServerState.Stopped || Table is null ? null : Table.Count), diagnostics);
        Table = new ConnectionTable(options.MaxConnections, options.EffectiveMaxHandshakes, options.IdleTimeout, Events);
        StartTime = DateTime.Now;
        if (logProvider is not null)
        {
            _loggerFactory = new LoggerFactory(new[] { logProvider });
            _logger = _loggerFactory.CreateLogger("KeyShell.Conversation");
            logProvider.Writer.WriteFailed += OnLogWriteFailed;
            Events.Conversation = _logger;
            _logger.Log(LogLevel.Information, ConversationEvents.System, ConversationLine.Launched, null, static (text, _) => text);
        }

        Context = new ServerContext(options, plainText: Tls is null, _logger, Events, Table.Retire);
        Admission = new Admission(Context, Table, AllowedAddresses, Tls, _stoppingSource.Token);
    }

    /// <summary>Raised when a client connects (on the thread that serves the connection, an event loop's or the thread pool's: a slow subscriber slows that connection, and on a loop every connection of the loop).</summary>
    public event EventHandler<KeyServerEventArgs>? ClientConnected
    {
        add => Events.ClientConnected += value;
        remove => Events.ClientConnected -= value;
    }

    /// <summary>Raised when a connection closes (on the thread that serves the connection, an event loop's or the thread pool's: a slow subscriber slows that connection, and on a loop every connection of the loop).</summary>
    public event EventHandler<KeyServerEventArgs>? ClientDisconnected
    {
        add => Events.ClientDisconnected += value;
        remove => Events.ClientDisconnected -= value;
    }

    /// <summary>Raised for every request answered, errors included (on the thread that serves the connection, an event loop's or the thread pool's: a slow subscriber slows that connection, and on a loop every connection of the loop).</summary>
    public event EventHandler<KeyServerEventArgs>? RequestServed
    {
        add => Events.RequestServed += value;
        remove => Events.RequestServed -= value;
    }

    /// <summary>Raised for every fault applied (on a worker thread): Reason is the type (reset, delay, ...),
    /// ClientId and Key the faulted request's; for refuse, null.</summary>
    public event EventHandler<KeyServerEventArgs>? FaultApplied
    {
        add => Events.FaultApplied += value;
        remove => Events.FaultApplied -= value;
    }

    /// <summary>Raised when the log cannot be written or a connection fails unexpectedly.</summary>
    public event EventHandler<KeyServerEventArgs>? ErrorOccurred
    {
        add => Events.ErrorOccurred += value;
        remove => Events.ErrorOccurred -= value;
    }

    public string Address { get; }

    public int Port { get; }

    /// <summary>The conversation log's full path, or null when the server runs without one.</summary>
    public string? LogPath { get; }

    public bool Timestamps => _options.Timestamps;

    public DateTime StartTime { get; }

    public int MaxLineLength => _options.MaxLineLength;

    /// <summary>The most sockets served at once: connections and TLS handshakes in progress alike.</summary>
    public int MaxConnections => _options.MaxConnections;

    public TimeSpan IdleTimeout => _options.IdleTimeout;

    public TimeSpan ShutdownTimeout => _options.ShutdownTimeout;

    /// <summary>The handler computing replies, or null when the key map answers.</summary>
    public IKeyRequestHandler? Handler => _options.Handler;

    /// <summary>Upstream mode: the server every request is forwarded to (host:port); null otherwise.</summary>
    public string? Upstream => (_options.Handler as Upstream.UpstreamHandler)?.Target.ToString();

    /// <summary>Upstream mode: the framing spoken to the upstream; null otherwise.</summary>
    public Client.Framing? UpstreamFraming => (_options.Handler as Upstream.UpstreamHandler)?.Framing;

    /// <summary>Upstream mode: a connection per request, or one per client connection; null otherwise.</summary>
    public Client.ConnectionMode? UpstreamConnection => (_options.Handler as Upstream.UpstreamHandler)?.Connection;

    public TimeSpan HandlerTimeout => _options.HandlerTimeout;

    public KeyServerState State => (KeyServerState)Volatile.Read(ref _state);

    /// <summary>The map requests are answered from. Setting it swaps the whole map at once.</summary>
    public KeyMap KeyMap
    {
        get => Context.KeyMap;
        set => Context.KeyMap = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>The faults applied now (<see cref="FaultSet.Empty"/> when none).</summary>
    public FaultSet FaultSet => Context.Faults.Set;

    /// <summary>Faults applied since the start: requests faulted, and connections refused by a Refuse fault.</summary>
    public long Faults => Events.Faults;

    /// <summary>
    /// Swaps the whole fault set at once: each request meets the old set or the new one. The new set's
    /// positions (Every, After) count from now. <see cref="FaultSet.Empty"/> removes every fault.
    /// </summary>
    public void SetFaults(FaultSet faults) =>
        Context.Faults = (faults ?? throw new ArgumentNullException(nameof(faults))).CreateSelector();

    /// <summary>Connections accepted and served since the start (rejected ones not included).</summary>
    public long Connections => Table.Accepted;

    /// <summary>Connections served now (TLS handshakes in progress not included).</summary>
    public int ActiveConnections => Table.Count;

    /// <summary>TLS handshakes in progress (each holds one of <see cref="MaxConnections"/>).</summary>
    public int Handshakes => Table.Handshakes;

    /// <summary>Requests answered, errors included.</summary>
    public long Requests => Table.Requests;

    /// <summary>Requests answered with an error reply.</summary>
    public long Errors => Table.Errors;

    /// <summary>Connections turned away (at the limits, while stopping) or refused (address rules, TLS).</summary>
    public long Rejected => Events.Rejected;

    /// <summary>Connections closed by the idle timeout: silent ones, and those that did not read their replies.</summary>
    public long IdleClosed => Events.IdleClosed;

    /// <summary>Failed writes to the conversation log (requests are served on, unlogged).</summary>
    public long LogErrors => _logProvider?.Writer.WriteErrors ?? 0;

    /// <summary>The last log write failure, or null.</summary>
    public string? LastLogError { get; private set; }

    /// <summary>Unexpected failures inside the server (each raised through <see cref="ErrorOccurred"/>).</summary>
    public long InternalErrors => Events.InternalErrors;

    /// <summary>The diagnostics kept for the host, when it asked for them (<see cref="KeyServerOptions.DiagnosticQueue"/>).</summary>
    public DiagnosticQueue? DiagnosticQueue => _options.DiagnosticQueue;

    /// <summary>Completes when the server has stopped and its log is closed.</summary>
    public Task Completion => _stopped.Task;

    internal ServerContext Context { get; }

    internal ServerEvents Events { get; }

    internal ConnectionTable Table { get; }

    internal Admission Admission { get; }

    /// <summary>True when Linux event loops serve the connections (see <see cref="KeyServerOptions.UseEventLoops"/>).</summary>
    internal bool UsesEventLoops => _acceptor?.UsesEventLoops ?? false;

    internal IAcceptor? Acceptor => _acceptor;

    /// <summary>Binds, opens the log (emptied, unless this process writes it already), starts listening. Throws <see cref="KeyServerException"/>
    /// with nothing left open when any step fails.</summary>
    public static KeyServer Start(KeyServerOptions options)
    {
        if (options is null)
        {
            throw new ArgumentNullException(nameof(options));
        }

        options.Validate();
        var endPoint = new IPEndPoint(options.Address, options.Port);
        var listener = new Socket(options.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        ConversationLoggerProvider? log = null;
        KeyServer? server = null;
        try
        {
            Bind(listener, endPoint);

            // The log is opened only once the port is ours: a failed start never empties another server's log.
            log = options.LogPath is null ? null : OpenLog(options.LogPath, options.Timestamps);
            listener.Listen(options.Backlog);
            server = new KeyServer(options, listener, log);
            server.StartAccepting();
            return server;
        }
        catch
        {
            server?.Abandon();
            log?.Dispose();
            listener.Dispose();
            throw;
        }
    }

    /// <summary>Stops the server (see the class summary); returns once it has stopped. Safe to call twice.</summary>
    public void Stop() => StopAsync().GetAwaiter().GetResult();

    /// <summary>Stops the server; the task completes once it has stopped and its log is flushed. Cancelling
    /// <paramref name="cancellationToken"/> cuts the stop short, not off: connections still busy are aborted
    /// at once instead of at the end of the shutdown timeout, and the task still completes once the server
    /// has stopped (see <see cref="StopAbandoned"/>).</summary>
    public Task StopAsync(CancellationToken cancellationToken = default)
    {
        Task stop;
        lock (_stopLock)
        {
            stop = _stop ??= RunStopAsync();
        }

        if (cancellationToken.CanBeCanceled && !stop.IsCompleted)
        {
            var registration = cancellationToken.Register(static state => ((KeyServer)state!).AbandonStop(), this);
            _ = stop.ContinueWith(static (_, r) => ((CancellationTokenRegistration)r!).Dispose(), registration, TaskScheduler.Default);
        }

        return stop;
    }

    /// <summary>True when a stop was cut short (<see cref="StopAsync"/> cancelled) before every connection had finished.</summary>
    public bool StopAbandoned { get; private set; }

    public void Dispose() => Stop();

    public override string ToString() => $"KeyServer {Address}:{Port} ({State})";

    private void StartAccepting()
    {
        _acceptor = (_options.UseEventLoops ? TransportPlatform.CreateEventLoopAcceptor(Admission, Events, _listener, Port) : null)
            ?? new SocketAcceptor(Admission, Events, _listener, () => Context.IsStopping);
        _acceptor.Start();
        Table.StartSweeping();
        _options.StartedForTests?.Invoke(this);
    }

    /// <summary>A start that failed after the acceptor was made: its threads and timer end with it.</summary>
    private void Abandon()
    {
        Context.BeginStopping();
        _stoppingSource.Cancel();
        Table.Dispose();
        _acceptor?.Dispose();
        _loggerFactory?.Dispose();
        Volatile.Write(ref _state, (int)KeyServerState.Stopped);
        _stopped.TrySetResult(false);
    }

    /// <summary>A handler may be stuck in a call nothing can interrupt: its disposal has the shutdown timeout
    /// (none once the stop was cut short), then goes on in the background, as the server stops.</summary>
    private async Task DisposeHandlerAsync()
    {
        if (Handler is IDisposable handler)
        {
            var disposed = Task.Run(handler.Dispose);
            _ = disposed.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
            await Bounded.WaitAsync(disposed, ShutdownTimeout, _abandonSource.Token).ConfigureAwait(false);
        }
    }

    private void AbandonStop()
    {
        if (State != KeyServerState.Stopped && Table.Count > 0)
        {
            StopAbandoned = true;
        }

        _abandonSource.Cancel();
    }

    private async Task RunStopAsync()
    {
        Volatile.Write(ref _state, (int)KeyServerState.Stopping);
        Context.BeginStopping();
        _stoppingSource.Cancel(); // handshakes under way end now
        try
        {
            await _acceptor!.StopAsync().ConfigureAwait(false);
            await Table.CloseAllAsync(ShutdownTimeout, _abandonSource.Token).ConfigureAwait(false);
            _acceptor.Dispose(); // the loops end; a connection that still has not closed closes on its loop now
            Table.Dispose();
            await DisposeHandlerAsync().ConfigureAwait(false);
        }
        finally
        {
            if (_logger is not null)
            {
                _logger.Log(LogLevel.Information, ConversationEvents.System, ConversationLine.Stopped, null, static (text, _) => text);
                _logProvider!.Dispose();
                _loggerFactory!.Dispose();
            }

            Volatile.Write(ref _state, (int)KeyServerState.Stopped);
            _stopped.TrySetResult(true);
        }
    }

    private void OnLogWriteFailed(Exception e)
    {
        LastLogError = e.Message;
        Events.LogFailed(e);
    }

    private static void Bind(Socket listener, IPEndPoint endPoint)
    {
        try
        {
            listener.Bind(endPoint);
        }
        catch (SocketException e)
        {
            throw e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => new KeyServerException(
                    KeyServerErrorKind.AddressInUse,
                    $"Port {endPoint.Port} on {endPoint.Address} is already in use. Stop what listens there, or pick another port (-Port 0 picks a free one).",
                    endPoint, e),
                SocketError.AddressNotAvailable => new KeyServerException(
                    KeyServerErrorKind.AddressNotAvailable,
                    $"The address {endPoint.Address} is not an address of this machine.",
                    endPoint, e),
                SocketError.AccessDenied => new KeyServerException(
                    KeyServerErrorKind.AccessDenied,
                    $"Permission denied binding {endPoint}: ports below 1024 need elevated rights.",
                    endPoint, e),
                _ => new KeyServerException(KeyServerErrorKind.SocketError, $"Cannot listen on {endPoint}: {e.Message}", endPoint, e),
            };
        }
    }

    private static ConversationLoggerProvider OpenLog(string path, bool timestamps)
    {
        try
        {
            return new ConversationLoggerProvider(path, timestamps);
        }
        catch (LogPathInUseException e)
        {
            throw new KeyServerException(KeyServerErrorKind.LogPathInUse, e.Message, path, e);
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is ArgumentException || e is NotSupportedException)
        {
            throw new KeyServerException(
                KeyServerErrorKind.LogPathUnwritable,
                $"Cannot write the conversation log '{path}': {e.Message}",
                path, e);
        }
    }
}
