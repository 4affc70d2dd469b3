using System;
using System.IO;

namespace KeyShell.Engine.Logging;

/// <summary>Another process writes this conversation log: it was left as it was (nothing emptied, nothing written).</summary>
public sealed class LogPathInUseException : IOException
{
    public LogPathInUseException(string path, Exception? inner = null)
        : base($"The conversation log '{path}' is in use by another process. Each log file has one writing process: stop the server or client that writes it there, or pick another -LogPath.", inner)
    {
        Path = path;
    }

    /// <summary>The full path of the log in use.</summary>
    public string Path { get; }
}
