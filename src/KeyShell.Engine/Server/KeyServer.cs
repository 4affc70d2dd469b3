using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Protocol;
#if NET
using KeyShell.Engine.Linux;
#endif
using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Server;

/// <summary>Where a server is in its life.</summary>
public enum KeyServerState
{
    Running,
    Stopping,
    Stopped,
}

/// <summary>
/// A running key-lookup server: a listener with a large backlog, accept loops on the thread pool, and one
/// <see cref="ServerConnection"/> per client. Counters are live. <see cref="Stop"/> closes the listener,
/// lets in-flight requests finish within the shutdown timeout, closes what is left, flushes the log.
/// </summary>
public sealed class KeyServer : IDisposable
{
    internal static readonly EventId ConversationEvent = new(1, "Conversation");
    private static readonly EventId SystemEvent = new(2, "System");
    private static long _nextConnectionId;

    private readonly Socket _listener;
    private readonly ConversationLoggerProvider? _logProvider;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly ConcurrentDictionary<long, ServerConnection> _connections = new();
    private readonly Task[] _acceptLoops;
#if NET
    private readonly EventLoop[]? _eventLoops;
    private readonly SafeSocketHandle? _listenerHandle;
#endif
    private readonly Timer? _idleTimer;
    private readonly TaskCompletionSource<bool> _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _stopLock = new();
    private readonly object _retireLock = new(); // taken on close and by counter readers, never per request
    private readonly int _idleTimeoutMs;
    private volatile KeyMap _keyMap;
    private volatile bool _stopping;
    private long _connectionsTotal;
    private long _requests;
    private long _errors;
    private long _rejected;
    private long _idleClosed;
    private long _internalErrors;
#if NET
    private long _acceptFailures;
    private int _lastAcceptFailureReport;
#endif
    private int _state;

    private KeyServer(KeyServerOptions options, Socket listener, ConversationLoggerProvider? logProvider)
    {
        _listener = listener;
        _logProvider = logProvider;
        _keyMap = options.KeyMap;
        var bound = (IPEndPoint)listener.LocalEndPoint!;
        Address = bound.Address.ToString();
        Port = bound.Port;
        LogPath = logProvider?.Writer.Path;
        Timestamps = options.Timestamps;
        MaxLineLength = options.MaxLineLength;
        MaxConnections = options.MaxConnections;
        IdleTimeout = options.IdleTimeout;
        ShutdownTimeout = options.ShutdownTimeout;
        Handler = options.Handler;
        HandlerTimeout = options.HandlerTimeout;
        StartTime = DateTime.Now;
        if (logProvider is not null)
        {
            _loggerFactory = new LoggerFactory(new[] { logProvider });
            Logger = _loggerFactory.CreateLogger("KeyShell.Conversation");
            logProvider.Writer.WriteFailed += e =>
            {
                LastLogError = e.Message;
                RaiseError(0, null, e);
            };
            Logger.Log(LogLevel.Information, SystemEvent, ConversationLine.Launched, null, static (text, _) => text);
        }

        if (options.IdleTimeout > TimeSpan.Zero)
        {
            _idleTimeoutMs = (int)Math.Min(int.MaxValue / 2, options.IdleTimeout.TotalMilliseconds);
            var period = Math.Max(10, Math.Min(1000, _idleTimeoutMs / 4));
            _idleTimer = new Timer(_ => CloseIdleConnections(), null, period, period);
        }

#if NET
        if (options.UseEventLoops && options.Handler is null && LinuxSockets.IsSupported)
        {
            _eventLoops = StartEventLoops(Port, e => ReportInternalError(0, null, e));
            _listenerHandle = listener.SafeHandle;
            LinuxSockets.SetNonBlocking((int)_listenerHandle.DangerousGetHandle());

            // Linux copies TCP_NODELAY from the listener to every connection it accepts: set once here
            // rather than once per connection (a system call fewer on the connection-per-message path).
            LinuxSockets.SetNoDelay((int)_listenerHandle.DangerousGetHandle());
            foreach (var loop in _eventLoops)
            {
                loop.Listen((int)_listenerHandle.DangerousGetHandle(), AcceptOnEventLoop);
            }
        }

#endif
        // Two accept loops keep a burst of connects moving while one loop hands a connection off. They, and
        // the connections they start, run without the caller's ExecutionContext: a server must not carry its
        // starter's AsyncLocals (a PowerShell runspace's, a test host's), and with no context to restore
        // each socket completion runs without the boxing ExecutionContext.Run costs.
        _acceptLoops = new Task[UsesEventLoops ? 0 : Math.Max(2, Math.Min(4, Environment.ProcessorCount))];
        using (ExecutionContext.SuppressFlow())
        {
            for (var i = 0; i < _acceptLoops.Length; i++)
            {
                _acceptLoops[i] = Task.Run(AcceptLoopAsync);
            }
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

    public bool Timestamps { get; }

    public DateTime StartTime { get; }

    public int MaxLineLength { get; }

    public int MaxConnections { get; }

    public TimeSpan IdleTimeout { get; }

    public TimeSpan ShutdownTimeout { get; }

    /// <summary>The handler computing replies, or null when the key map answers.</summary>
    public IKeyRequestHandler? Handler { get; }

    public TimeSpan HandlerTimeout { get; }

    public KeyServerState State => (KeyServerState)Volatile.Read(ref _state);

    /// <summary>The map requests are answered from. Setting it swaps the whole map at once.</summary>
    public KeyMap KeyMap
    {
        get => _keyMap;
        set => _keyMap = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>Connections accepted since the start (rejected ones not included).</summary>
    public long Connections => Interlocked.Read(ref _connectionsTotal);

    public int ActiveConnections => _connections.Count;

    /// <summary>Requests answered, errors included.</summary>
    /// <remarks>Each connection counts its own (no shared counter on the hot path); this sums them.</remarks>
    public long Requests
    {
        get
        {
            lock (_retireLock)
            {
                return _requests + _connections.Values.Sum(c => c.Requests);
            }
        }
    }

    /// <summary>Requests answered with an error reply.</summary>
    public long Errors
    {
        get
        {
            lock (_retireLock)
            {
                return _errors + _connections.Values.Sum(c => c.Errors);
            }
        }
    }

    /// <summary>Connections turned away at the connection limit.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Connections closed by the idle timeout.</summary>
    public long IdleClosed => Interlocked.Read(ref _idleClosed);

    /// <summary>Failed writes to the conversation log (requests are served on, unlogged).</summary>
    public long LogErrors => _logProvider?.Writer.WriteErrors ?? 0;

    /// <summary>The last log write failure, or null.</summary>
    public string? LastLogError { get; private set; }

    /// <summary>Unexpected failures inside the server (each raised through <see cref="ErrorOccurred"/>).</summary>
    public long InternalErrors => Interlocked.Read(ref _internalErrors);

    /// <summary>Completes when the server has stopped and its log is closed.</summary>
    public Task Completion => _stopped.Task;

    internal ILogger? Logger { get; }

    internal bool IsStopping => _stopping;

#if NET
    /// <summary>True when Linux event loops serve the connections (see <see cref="KeyServerOptions.UseEventLoops"/>).</summary>
    internal bool UsesEventLoops => _eventLoops is not null;
#else
    internal bool UsesEventLoops => false;
#endif

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
        try
        {
            Bind(listener, endPoint);

            // The log is opened only once the port is ours: a failed start never empties another server's log.
            log = options.LogPath is null ? null : OpenLog(options.LogPath, options.Timestamps);
            listener.Listen(options.Backlog);
            return new KeyServer(options, listener, log);
        }
        catch
        {
            log?.Dispose();
            listener.Dispose();
            throw;
        }
    }

    /// <summary>Stops the server (see the class summary); returns once it has stopped. Safe to call twice.</summary>
    public void Stop()
    {
        lock (_stopLock)
        {
            if (State != KeyServerState.Running)
            {
                _stopped.Task.Wait();
                return;
            }

            Volatile.Write(ref _state, (int)KeyServerState.Stopping);
            _stopping = true;
        }

        _listener.Dispose();
        _idleTimer?.Dispose();
        foreach (var connection in _connections.Values)
        {
            if (!connection.IsBusy)
            {
                connection.Abort();
            }
        }

        var deadline = DateTime.UtcNow + ShutdownTimeout;
        while (!_connections.IsEmpty && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(5);
        }

        foreach (var connection in _connections.Values)
        {
            connection.Abort();
        }

        // An aborted connection cleans up on its own loop; give those loops a bounded moment.
        SpinWait.SpinUntil(() => _connections.IsEmpty, TimeSpan.FromSeconds(2));
        Task.WaitAll(_acceptLoops, TimeSpan.FromSeconds(2));
#if NET
        StopEventLoops();
#endif
        (Handler as IDisposable)?.Dispose();
        if (Logger is not null)
        {
            Logger.Log(LogLevel.Information, SystemEvent, ConversationLine.Stopped, null, static (text, _) => text);
            _logProvider!.Dispose();
            _loggerFactory!.Dispose();
        }

        Volatile.Write(ref _state, (int)KeyServerState.Stopped);
        _stopped.TrySetResult(true);
    }

    public void Dispose() => Stop();

    public override string ToString() => $"KeyServer {Address}:{Port} ({State})";

    internal void Remove(ServerConnection connection)
    {
        // Retiring a connection's counts and removing it is one step for readers: never missed, never twice.
        lock (_retireLock)
        {
            _requests += connection.Requests;
            _errors += connection.Errors;
            _connections.TryRemove(connection.Id, out _);
        }

        ClientDisconnected?.Invoke(this, new KeyServerEventArgs(connection.Id, null));
    }

    internal void ReportError(ServerConnection connection, Exception error)
    {
        ReportInternalError(connection.Id, connection.RemoteEndPoint, error);
    }

    internal void RaiseRequestServed(ServerConnection connection, ReadOnlySpan<byte> request, int clientLength, ParseStatus status, byte[] reply)
    {
        var handler = RequestServed;
        if (handler is null)
        {
            return;
        }

        string? client = null;
        string key;
        if (status == ParseStatus.Ok)
        {
            client = Ascii(request.Slice(0, clientLength));
            key = Ascii(request.Slice(clientLength + 1));
        }
        else
        {
            using var escaped = new ByteBuffer(request.Length + 16);
            ConversationLine.WriteEscaped(escaped, request);
            key = Ascii(escaped.Span);
        }

        handler(this, new KeyServerEventArgs(connection.Id, null, client, key, Encoding.UTF8.GetString(reply)));
    }

    /// <summary>Raises <see cref="RequestServed"/> for a request answered by the handler.</summary>
    internal void RaiseRequestServed(ServerConnection connection, KeyRequest request, string reply) =>
        RequestServed?.Invoke(this, new KeyServerEventArgs(connection.Id, request.RemoteEndPoint, request.ClientId, request.Key, reply));

    private static string Ascii(ReadOnlySpan<byte> bytes) => Encoding.ASCII.GetString(bytes.ToArray());

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

    private async Task AcceptLoopAsync()
    {
        while (!_stopping)
        {
            Socket socket;
            try
            {
                socket = await SocketIo.AcceptAsync(_listener).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            catch (SocketException) when (_stopping)
            {
                break;
            }
            catch (SocketException e)
            {
                // Out of descriptors, or a connection reset before it was accepted: keep accepting,
                // but do not spin while the condition lasts.
                ReportInternalError(0, null, e);
                await Task.Delay(10).ConfigureAwait(false);
                continue;
            }

            Serve(socket);
        }
    }

    private void Serve(Socket socket)
    {
        if (!HasRoom)
        {
            Reject(socket);
            return;
        }

        socket.NoDelay = true;
        var connection = Admit(new ServerConnection(this, socket, NextConnectionId()));
        _ = connection.RunAsync(); // observes its own exceptions
    }

    /// <summary>False at the connection limit, or once a stop began: the next client is turned away.</summary>
    private bool HasRoom => _connections.Count < MaxConnections && !_stopping;

    private long NextConnectionId() => Interlocked.Increment(ref _nextConnectionId);

    /// <summary>Takes an accepted connection on: counted, listed, announced.</summary>
    private ServerConnection Admit(ServerConnection connection)
    {
        _connections[connection.Id] = connection;
        Interlocked.Increment(ref _connectionsTotal);
        try
        {
            ClientConnected?.Invoke(this, new KeyServerEventArgs(connection.Id, connection.RemoteEndPoint));
        }
        catch (Exception e)
        {
            ReportError(connection, e); // a subscriber's failure: the client is served all the same
        }

        return connection;
    }

#if NET
    /// <summary>One loop per processor (at most 16): each serves its share of the connections.</summary>
    private static EventLoop[] StartEventLoops(int port, Action<Exception> onError)
    {
        var loops = new EventLoop[Math.Min(16, Environment.ProcessorCount)];
        try
        {
            for (var i = 0; i < loops.Length; i++)
            {
                loops[i] = new EventLoop($"KeyShell :{port} loop {i + 1}", onError);
            }
        }
        catch
        {
            foreach (var loop in loops)
            {
                loop?.Dispose();
            }

            throw;
        }

        return loops;
    }

    /// <summary>
    /// Accepts on a loop's thread what is waiting (a bounded number per wake-up, so a burst of connects
    /// cannot starve the loop's connections) and serves each on that loop; a request that came with the
    /// connect is answered at once, without waiting for another event. Never throws.
    /// </summary>
    private void AcceptOnEventLoop(EventLoop loop)
    {
        for (var i = 0; i < 32 && !_stopping; i++)
        {
            var fd = AcceptOne(out var peer);
            if (fd == -LinuxSockets.EAGAIN)
            {
                return; // none left, or another loop took it
            }

            if (fd < 0)
            {
                if (fd is -LinuxSockets.EMFILE or -LinuxSockets.ENFILE or -LinuxSockets.ENOBUFS or -LinuxSockets.ENOMEM)
                {
                    // Out of descriptors or memory: keep serving, retry accepting shortly.
                    ReportAcceptFailure(-fd);
                    loop.PauseListening(TimeSpan.FromMilliseconds(10));
                    return;
                }

                continue; // reset before it was accepted (ECONNABORTED), or the listener is closing
            }

            if (!HasRoom)
            {
                Reject(new Socket(new SafeSocketHandle((IntPtr)fd, ownsHandle: true)));
                continue;
            }

            ServerConnection? connection = null;
            try
            {
                connection = Admit(new ServerConnection(this, fd, peer, NextConnectionId()));
                connection.StartOnEventLoop(loop);
            }
            catch (Exception e)
            {
                // The kernel refused the registration (out of memory): this connection only is lost.
                ReportInternalError(connection?.Id ?? 0, null, e);
                if (connection is null)
                {
                    LinuxSockets.Close(fd);
                }
                else
                {
                    connection.CloseOnEventLoop();
                }

                continue;
            }

            connection.OnReady();
        }
    }

    /// <summary>
    /// Reports a failed accept: the first at once, then at most one a second while the shortage lasts
    /// (the loops retry every 10 ms, and a report per retry would bury everything else).
    /// </summary>
    private void ReportAcceptFailure(int errno)
    {
        var failures = Interlocked.Increment(ref _acceptFailures);
        var now = Environment.TickCount;
        var last = Volatile.Read(ref _lastAcceptFailureReport);
        if (failures > 1 && unchecked(now - last) < 1000)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _lastAcceptFailureReport, now, last) == last)
        {
            ReportInternalError(0, null, new SocketException(errno, $"accept failed with errno {errno} ({failures} failed accepts so far): out of descriptors or memory; the server keeps serving and tries again every 10 ms."));
        }
    }

    /// <summary>accept4 on the listener, holding its handle so a concurrent stop cannot close it under the call.</summary>
    private int AcceptOne(out IPEndPoint? peer)
    {
        peer = null;
        var added = false;
        try
        {
            _listenerHandle!.DangerousAddRef(ref added);
            return LinuxSockets.Accept((int)_listenerHandle.DangerousGetHandle(), out peer);
        }
        catch (ObjectDisposedException)
        {
            return -LinuxSockets.EAGAIN; // stopped
        }
        finally
        {
            if (added)
            {
                _listenerHandle!.DangerousRelease();
            }
        }
    }

    /// <summary>Ends the loop threads, closes any connection still on them, then frees the loops.</summary>
    private void StopEventLoops()
    {
        if (_eventLoops is null)
        {
            return;
        }

        foreach (var loop in _eventLoops)
        {
            loop.Stop();
        }

        foreach (var connection in _connections.Values)
        {
            connection.CloseOnEventLoop(); // no loop thread runs now: this thread may close them
        }

        foreach (var loop in _eventLoops)
        {
            loop.Dispose();
        }
    }
#endif

    private static readonly byte[] BusyReply = Encoding.ASCII.GetBytes(Replies.Busy + "\n");

    private void Reject(Socket socket)
    {
        Interlocked.Increment(ref _rejected);
        try
        {
            socket.Blocking = false; // a fresh socket's send buffer is empty: this never waits
            socket.Send(BusyReply);
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // The client is already gone.
        }
        finally
        {
            socket.Dispose();
        }
    }

    private void CloseIdleConnections()
    {
        var now = Environment.TickCount;
        foreach (var connection in _connections.Values)
        {
            if (!connection.IsBusy && unchecked(now - connection.LastActivity) > _idleTimeoutMs && Interlocked.Exchange(ref connection.IdleClosing, 1) == 0)
            {
                Interlocked.Increment(ref _idleClosed);
                connection.Abort();
            }
        }
    }

    /// <summary>Counts an unexpected failure inside the server and raises it through ErrorOccurred.</summary>
    private void ReportInternalError(long connectionId, string? remote, Exception error)
    {
        Interlocked.Increment(ref _internalErrors);
        RaiseError(connectionId, remote, error);
    }

    private void RaiseError(long connectionId, string? remote, Exception error) =>
        ErrorOccurred?.Invoke(this, new KeyServerEventArgs(connectionId, remote, error: error));
}
