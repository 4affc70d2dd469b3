using System;
using KeyShell.Engine.Protocol;
using Microsoft.Extensions.Logging;

namespace KeyShell.Engine.Logging;

/// <summary>
/// The Microsoft.Extensions.Logging provider of the conversation log: every logger it makes writes to
/// one <see cref="ConversationLogWriter"/>. A <see cref="ConversationBatch"/> is written as it is; any
/// other message becomes a <c>SYSTEM:</c> line.
/// </summary>
[ProviderAlias("KeyShellConversation")]
public sealed class ConversationLoggerProvider : ILoggerProvider
{
    public ConversationLoggerProvider(string path, bool timestamps)
    {
        Writer = new ConversationLogWriter(path);
        Timestamps = timestamps;
    }

    public ConversationLogWriter Writer { get; }

    public bool Timestamps { get; }

    public ILogger CreateLogger(string categoryName) => new ConversationLogger(this);

    public void Dispose() => Writer.Dispose();

    private sealed class ConversationLogger : ILogger
    {
        private readonly ConversationLoggerProvider _provider;

        public ConversationLogger(ConversationLoggerProvider provider) => _provider = provider;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (state is ConversationBatch batch)
            {
                _provider.Writer.Append(batch.Lines.AsSpan());
                return;
            }

            using var line = new ByteBuffer();
            ConversationLine.WriteSystem(line, ConversationLine.Timestamp(_provider.Timestamps), formatter(state, exception));
            _provider.Writer.Append(line.Span);
        }
    }
}
