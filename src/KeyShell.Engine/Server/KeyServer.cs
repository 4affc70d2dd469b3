using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Metrics;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Sessions;
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
    internal static readonly EventId ConversationEvent = new(1, "Conversation");
    private static readonly EventId SystemEvent = new(2, "System");
    private static long _nextConnectionId;

    private readonly Socket _listener;
    private readonly ConversationLoggerProvider? _logProvider;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly TaskCompletionSource<bool> _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _stopLock = new();
    private readonly CancellationTokenSource _stoppingSource = new();
    private readonly KeyServerOptions _options;
    private IAcceptor? _acceptor;
    private Task? _stop;
    private volatile KeyMap _keyMap;
    private volatile bool _stopping;
    private long _internalErrors;
    private int _state;

    private KeyServer(KeyServerOptions options, Socket listener, ConversationLoggerProvider? logProvider)
    {
        _options = options;
        _listener = listener;
        _logProvider = logProvider;
        _keyMap = options.KeyMap;
        var bound = (IPEndPoint)listener.LocalEndPoint!;
        Address = bound.Address.ToString();
        Port = bound.Port;
        LogPath = logProvider?.Writer.Path;
        Diagnostics = options.Diagnostics is null && options.DiagnosticQueue is null
            ? NullLogger.Instance
            : new DiagnosticsLogger(options.Diagnostics, options.DiagnosticQueue);
        Table = new ConnectionTable(options.MaxConnections, options.IdleTimeout);
        Metrics = new ServerMetrics(Address, Port, () => State == KeyServerState.Stopped ? null : Table.Count);
        InitializeSecurity(options);
        StartTime = DateTime.Now;
        if (logProvider is not null)
        {
            _loggerFactory = new LoggerFactory(new[] { logProvider });
            Logger = _loggerFactory.CreateLogger("KeyShell.Conversation");
            logProvider.Writer.WriteFailed += OnLogWriteFailed;
            Logger.Log(LogLevel.Information, SystemEvent, ConversationLine.Launched, null, static (text, _) => text);
        }
    }

    /// <summary>Raised when a client connects (on a worker thread).</summary>
    public event EventHandler<KeyServerEventArgs>? ClientConnected;

    /// <summary>Raised when a connection closes (on a worker thread).</summary>
    public event EventHandler<KeyServerEventArgs>? ClientDisconnected;

    /// <summary>Raised for every request answered, errors included (on a worker thread).</summary>
    public event EventHandler<KeyServerEventArgs>? RequestServed;

    /// <summary>Raised when the log cannot be written or a connection fails unexpectedly.</summary>
    public event EventHandler<KeyServerEventArgs>? ErrorOccurred;

    public string Address { get; }

    public int Port { get; }

    /// <summary>The conversation log's full path, or null when the server runs without one.</summary>
    public string? LogPath { get; }

    public bool Timestamps => _options.Timestamps;

    public DateTime StartTime { get; }

    public int MaxLineLength => _options.MaxLineLength;

    public int MaxConnections => _options.MaxConnections;

    public TimeSpan IdleTimeout => _options.IdleTimeout;

    public TimeSpan ShutdownTimeout => _options.ShutdownTimeout;

    /// <summary>The handler computing replies, or null when the key map answers.</summary>
    public IKeyRequestHandler? Handler => _options.Handler;

    public TimeSpan HandlerTimeout => _options.HandlerTimeout;

    public KeyServerState State => (KeyServerState)Volatile.Read(ref _state);

    /// <summary>The map requests are answered from. Setting it swaps the whole map at once.</summary>
    public KeyMap KeyMap
    {
        get => _keyMap;
        set => _keyMap = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>Connections accepted since the start (rejected ones not included).</summary>
    public long Connections => Table.Accepted;

    public int ActiveConnections => Table.Count;

    /// <summary>Requests answered, errors included.</summary>
    public long Requests => Table.Requests;

    /// <summary>Requests answered with an error reply.</summary>
    public long Errors => Table.Errors;

    /// <summary>Connections turned away: at the connection limit, or refused (address rules, TLS; see <see cref="RefuseClient(ClientRefusal, string?, string?)"/>).</summary>
    public long Rejected => Table.Rejected;

    /// <summary>Connections closed by the idle timeout: silent ones, and those that did not read their replies.</summary>
    public long IdleClosed => Table.IdleClosed;

    /// <summary>Failed writes to the conversation log (requests are served on, unlogged).</summary>
    public long LogErrors => _logProvider?.Writer.WriteErrors ?? 0;

    /// <summary>The last log write failure, or null.</summary>
    public string? LastLogError { get; private set; }

    /// <summary>Unexpected failures inside the server (each raised through <see cref="ErrorOccurred"/>).</summary>
    public long InternalErrors => Interlocked.Read(ref _internalErrors);

    /// <summary>The diagnostics kept for the host, when it asked for them (<see cref="KeyServerOptions.DiagnosticQueue"/>).</summary>
    public DiagnosticQueue? DiagnosticQueue => _options.DiagnosticQueue;

    /// <summary>Completes when the server has stopped and its log is closed.</summary>
    public Task Completion => _stopped.Task;

    internal ILogger? Logger { get; }

    /// <summary>The engine's own diagnostics (not the conversation): the host's logger, or none.</summary>
    internal ILogger Diagnostics { get; }

    internal ConnectionTable Table { get; }

    internal ServerMetrics Metrics { get; }

    internal bool IsStopping => _stopping;

    /// <summary>Cancelled when a stop begins: ends what is not yet a connection (a TLS handshake).</summary>
    internal CancellationToken Stopping => _stoppingSource.Token;

    /// <summary>True when Linux event loops serve the connections (see <see cref="KeyServerOptions.UseEventLoops"/>).</summary>
    internal bool UsesEventLoops => _acceptor?.UsesEventLoops ?? false;

    internal IAcceptor? Acceptor => _acceptor;

    internal bool HasRequestListeners => RequestServed is not null;

    /// <summary>Binds, opens the log (emptied), starts listening. Throws <see cref="KeyServerException"/>
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
    /// <paramref name="cancellationToken"/> ends the wait, not the stop.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default)
    {
        Task stop;
        lock (_stopLock)
        {
            stop = _stop ??= RunStopAsync();
        }

        return cancellationToken.CanBeCanceled ? WaitAsync(stop, cancellationToken) : stop;
    }

    public void Dispose() => Stop();

    public override string ToString() => $"KeyServer {Address}:{Port} ({State})";

    /// <summary>Takes an accepted connection on: counted, listed, announced; or null when there is no room.</summary>
    internal ServerSession? Admit(IPEndPoint? peer)
    {
        if (!Table.HasRoom)
        {
            TurnAway(peer);
            return null;
        }

        var session = new ServerSession(this, Interlocked.Increment(ref _nextConnectionId), peer);
        if (!Table.TryAdd(session))
        {
            TurnAway(peer); // the stop began since the check above
            return null;
        }

        try
        {
            Metrics.ConnectionOpened();
            ClientConnected?.Invoke(this, new KeyServerEventArgs(session.Id, session.RemoteEndPoint));
        }
        catch (Exception e)
        {
            ReportError(session, e); // a subscriber's (or a meter listener's) failure: the client is served all the same
        }

        return session;
    }

    private void TurnAway(IPEndPoint? peer)
    {
        Table.CountRejected();
        try
        {
            if (_stopping)
            {
                Metrics.ConnectionRejected(RejectionReason.Stopping);
                Diagnostics.LogInformation(DiagnosticEvents.Rejected, "Turned away {Peer}: the server is stopping.", peer);
            }
            else
            {
                Metrics.ConnectionRejected(RejectionReason.MaxConnections);
                Diagnostics.LogInformation(DiagnosticEvents.Rejected, "Turned away {Peer}: {Active} connections open, the limit is {Limit}.", peer, Table.Count, MaxConnections);
            }
        }
        catch (Exception e)
        {
            ReportInternalError(0, peer?.ToString(), e);
        }
    }

    /// <summary>A closed connection leaves the table; its meters and subscribers hear of it. Never throws.</summary>
    internal void Retire(ServerSession session)
    {
        // The meters first: whoever sees the connection gone from ActiveConnections finds it in them too.
        try
        {
            Metrics.ConnectionClosed(session.OpenedAt);
            if (session.CloseReason is CloseReason.Idle or CloseReason.Stalled)
            {
                Diagnostics.LogInformation(
                    DiagnosticEvents.IdleClosed,
                    session.CloseReason == CloseReason.Stalled ? "Closed {Peer}: it did not read its replies for {Seconds} s." : "Closed {Peer}: idle for {Seconds} s.",
                    session.RemoteEndPoint,
                    IdleTimeout.TotalSeconds);
            }
        }
        catch (Exception e)
        {
            ReportError(session, e); // a meter listener's or the host logger's failure
        }

        Table.Remove(session);
        try
        {
            ClientDisconnected?.Invoke(this, new KeyServerEventArgs(session.Id, session.RemoteEndPoint));
        }
        catch (Exception e)
        {
            ReportError(session, e); // a subscriber's failure
        }
    }

    internal void ReportError(ServerSession session, Exception error) => ReportInternalError(session.Id, session.RemoteEndPoint, error);

    /// <summary>Counts an unexpected failure inside the server and raises it through ErrorOccurred. Never throws.</summary>
    internal void ReportInternalError(long connectionId, string? remote, Exception error)
    {
        Interlocked.Increment(ref _internalErrors);
        try
        {
            Diagnostics.LogError(DiagnosticEvents.InternalError, error, "Internal error on connection {ConnectionId} ({Peer}): {Message}", connectionId, remote, error.Message);
        }
        catch (Exception)
        {
            // The host's logger failed: ErrorOccurred below still tells.
        }

        RaiseError(connectionId, remote, error);
    }

    private void StartAccepting()
    {
#if NET
        _acceptor = _options.UseEventLoops && Transport.Epoll.Libc.IsSupported ? new EventLoopAcceptor(this, _listener) : new SocketAcceptor(this, _listener);
#else
        _acceptor = new SocketAcceptor(this, _listener);
#endif
        _acceptor.Start();
        Table.StartSweeping();
        _options.StartedForTests?.Invoke(this);
    }

    /// <summary>A start that failed after the acceptor was made: its threads and timer end with it.</summary>
    private void Abandon()
    {
        _stopping = true;
        _stoppingSource.Cancel();
        Table.Dispose();
        _acceptor?.Dispose();
        _loggerFactory?.Dispose();
        Volatile.Write(ref _state, (int)KeyServerState.Stopped);
        _stopped.TrySetResult(false);
    }

    private async Task RunStopAsync()
    {
        Volatile.Write(ref _state, (int)KeyServerState.Stopping);
        _stopping = true;
        _stoppingSource.Cancel(); // handshakes under way end now
        try
        {
            await _acceptor!.StopAsync().ConfigureAwait(false);
            await Table.CloseAllAsync(ShutdownTimeout).ConfigureAwait(false);
            _acceptor.Dispose(); // the loops end; a connection that still has not closed closes on its loop now
            Table.Dispose();
            (Handler as IDisposable)?.Dispose();
        }
        finally
        {
            if (Logger is not null)
            {
                Logger.Log(LogLevel.Information, SystemEvent, ConversationLine.Stopped, null, static (text, _) => text);
                _logProvider!.Dispose();
                _loggerFactory!.Dispose();
            }

            Volatile.Write(ref _state, (int)KeyServerState.Stopped);
            _stopped.TrySetResult(true);
        }
    }

    private static async Task WaitAsync(Task task, CancellationToken cancellationToken)
    {
        var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using (cancellationToken.Register(() => cancelled.TrySetCanceled(cancellationToken)))
        {
            await (await Task.WhenAny(task, cancelled.Task).ConfigureAwait(false)).ConfigureAwait(false);
        }
    }

    private void OnLogWriteFailed(Exception e)
    {
        LastLogError = e.Message;
        Diagnostics.LogWarning(DiagnosticEvents.LogFailed, e, "The conversation log could not be written: {Message}", e.Message);
        RaiseError(0, null, e);
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
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is ArgumentException || e is NotSupportedException)
        {
            throw new KeyServerException(
                KeyServerErrorKind.LogPathUnwritable,
                $"Cannot write the conversation log '{path}': {e.Message}",
                path, e);
        }
    }
}
