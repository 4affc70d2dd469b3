using System.Net;
using System.Text;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Metrics;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Server;
using KeyShell.Engine.Sessions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KeyShell.Engine.Tests.Sessions;

/// <summary>A server session with everything its context holds, in memory: the log lines it hands over and
/// the sessions it retires are kept for the test to read.</summary>
internal sealed class ServerSessionHarness
{
    private readonly List<ServerSession> _retired = new();

    public ServerSessionHarness(Action<KeyServerOptions>? configure = null, bool plainText = true)
    {
        var options = new KeyServerOptions { LogPath = null };
        configure?.Invoke(options);
        Events = new ServerEvents(this, new ServerMetrics("127.0.0.1", 0, () => null), NullLogger.Instance);
        Log = new RecordingLog();
        Events.Conversation = Log;
        Context = new ServerContext(options, plainText, Log, Events, s => _retired.Add(s));
        Session = new ServerSession(Context, 1, new IPEndPoint(IPAddress.Loopback, 40000));
        Connection = new InMemoryConnection(Session);
    }

    public ServerContext Context { get; }

    public ServerEvents Events { get; }

    public RecordingLog Log { get; }

    public ServerSession Session { get; }

    public InMemoryConnection Connection { get; }

    public IReadOnlyList<ServerSession> Retired => _retired;

    /// <summary>The conversation log as an ILogger: the lines it was handed, in order.</summary>
    internal sealed class RecordingLog : ILogger
    {
        public List<string> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (state is ConversationBatch batch)
            {
                Lines.AddRange(Encoding.UTF8.GetString(batch.Lines.Array!, batch.Lines.Offset, batch.Lines.Count).Split('\n', StringSplitOptions.RemoveEmptyEntries));
            }
            else
            {
                Lines.Add("SYSTEM: " + formatter(state, exception));
            }
        }
    }
}
