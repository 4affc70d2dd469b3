using System;
using System.Collections.Generic;
using System.IO;

namespace KeyShell.Engine.Logging;

/// <summary>
/// This process's one open file for one log path, shared by every <see cref="ConversationLogWriter"/> that
/// names it (servers, clients). The first owner opens and empties it; later owners join without emptying
/// it; it closes when the last owner lets go. Batches are written one at a time, each whole, by the thread
/// that hands it over, before that thread goes on: once a batch's replies are sent, its lines are in the
/// kernel, and a crash of the process cannot lose them.
/// </summary>
internal sealed class SharedLogFile
{
    private const int ExistenceCheckMilliseconds = 1000;

    private static readonly object TableGate = new();
    private static readonly Dictionary<string, SharedLogFile> Table = new(LogFile.NameComparer);

    private readonly object _gate = new(); // one batch at a time; guards _file, and the owners' IsJoined
    private readonly List<ConversationLogWriter> _owners = new(); // changed under TableGate and _gate both
    private readonly string _identity;
    private LogFile? _file;
    private int _lastExistenceCheck = Environment.TickCount;

    private SharedLogFile(string identity, LogFile file)
    {
        _identity = identity;
        _file = file;
    }

    /// <summary>Makes <paramref name="owner"/> an owner of the file at <paramref name="fullPath"/>: the open
    /// one, or a newly opened and emptied one. Throws as <see cref="LogFile.Open"/> does, owning nothing.</summary>
    public static SharedLogFile Join(string fullPath, ConversationLogWriter owner)
    {
        var identity = LogFile.Identity(fullPath);
        lock (TableGate)
        {
            if (!Table.TryGetValue(identity, out var shared))
            {
                shared = new SharedLogFile(identity, LogFile.Open(identity, empty: true));
                Table.Add(identity, shared);
            }

            lock (shared._gate)
            {
                shared._owners.Add(owner);
                owner.IsJoined = true;
            }

            return shared;
        }
    }

    /// <summary>Ends <paramref name="owner"/>'s share (its later batches are dropped); the last owner closes the file. Once.</summary>
    public void Leave(ConversationLogWriter owner)
    {
        lock (TableGate)
        {
            lock (_gate)
            {
                if (!owner.IsJoined)
                {
                    return;
                }

                owner.IsJoined = false;
                _owners.Remove(owner);
                if (_owners.Count > 0)
                {
                    return;
                }

                _file?.Dispose();
                _file = null;
            }

            Table.Remove(_identity);
        }
    }

    /// <summary>Writes <paramref name="owner"/>'s batch, whole, before it returns. Never throws: a failure is
    /// reported to the owner (a deleted file to every owner) once the file is free for the next batch.</summary>
    public void Write(ConversationLogWriter owner, ReadOnlySpan<byte> lines)
    {
        Exception? failure = null, deleted = null;
        ConversationLogWriter[]? everyone = null;
        lock (_gate)
        {
            if (!owner.IsJoined)
            {
                return; // it has let go: its lines are dropped
            }

            if (_file is not null && unchecked(Environment.TickCount - _lastExistenceCheck) >= ExistenceCheckMilliseconds)
            {
                deleted = CheckFileStillThere();
                everyone = deleted is null ? null : _owners.ToArray();
            }

            try
            {
                (_file ??= LogFile.Open(_identity, empty: false)).Write(lines);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                failure = e; // the file stays open (and locked): the next batch tries again
            }
        }

        if (everyone is not null)
        {
            foreach (var each in everyone)
            {
                each.Report(deleted!, always: true);
            }
        }

        if (failure is not null)
        {
            owner.Report(failure, always: false);
        }
    }

    /// <summary>
    /// Deleting an open file does not fail its writes (they go to the unlinked file), so the writers look,
    /// once a second, whether the file is still there; if not, the next write starts a new one.
    /// </summary>
    private Exception? CheckFileStillThere()
    {
        _lastExistenceCheck = Environment.TickCount;
        if (File.Exists(_identity))
        {
            return null;
        }

        _file!.Dispose();
        _file = null;
        return new FileNotFoundException($"The conversation log '{_identity}' was deleted while it was being written; a new file was started. Lines written in the last second may be lost.", _identity);
    }
}
