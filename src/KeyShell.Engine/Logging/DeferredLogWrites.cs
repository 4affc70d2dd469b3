using System;
using System.Collections.Generic;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Logging;

/// <summary>
/// The log lines an event loop's thread hands over during one pass (the connections it served after one
/// wait), written at the end of the pass with one write per file, as Redis writes its append-only file before
/// it sends the replies of an event-loop pass. The loop sends nothing while lines are pending here (see
/// <see cref="HasPending"/>): every reply still leaves after its lines are in the file, and a pass that served
/// many connections costs one write instead of one per connection. Threads that are not loops write at once.
/// </summary>
internal sealed class DeferredLogWrites
{
    [ThreadStatic]
    private static DeferredLogWrites? _current;

    private readonly List<Pending> _pending = new(); // kept from pass to pass while their owners write: no allocation per pass

    /// <summary>The deferral of the calling thread's loop, or null on any other thread.</summary>
    public static DeferredLogWrites? Current => _current;

    /// <summary>True while lines handed over in this pass are not yet in their file: what the loop would send
    /// now must wait for <see cref="Flush"/>.</summary>
    public bool HasPending { get; private set; }

    /// <summary>Makes the calling thread (an event loop's) defer its log writes to the end of each pass.</summary>
    public static DeferredLogWrites InstallOnThisThread() => _current = new DeferredLogWrites();

    /// <summary>Keeps a copy of <paramref name="lines"/> for <paramref name="owner"/>'s file, after whatever was
    /// handed over before them in this pass.</summary>
    public void Add(ConversationLogWriter owner, ReadOnlySpan<byte> lines)
    {
        HasPending = true;
        foreach (var pending in _pending)
        {
            if (pending.Owner == owner)
            {
                pending.Lines.Write(lines);
                return;
            }
        }

        var added = new Pending(owner);
        added.Lines.Write(lines);
        _pending.Add(added);
    }

    /// <summary>Writes what the pass handed over, one write per owner, in the order they first wrote; an
    /// owner that wrote nothing this pass is forgotten (its buffer back to the pool).</summary>
    public void Flush()
    {
        if (!HasPending)
        {
            return;
        }

        HasPending = false;
        for (var i = _pending.Count - 1; i >= 0; i--)
        {
            var pending = _pending[i];
            if (pending.Lines.Length == 0)
            {
                pending.Lines.Dispose();
                _pending.RemoveAt(i);
            }
        }

        foreach (var pending in _pending)
        {
            pending.Owner.WriteNow(pending.Lines.Span);
            pending.Lines.Clear();
        }
    }

    private sealed class Pending
    {
        public Pending(ConversationLogWriter owner) => Owner = owner;

        public ConversationLogWriter Owner { get; }

        public ByteBuffer Lines { get; } = new(256);
    }
}
