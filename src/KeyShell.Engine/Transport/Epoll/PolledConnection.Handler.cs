using System;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Transport.Epoll;

/// <summary>The hand-off of a session's asynchronous work (a request handler) from the loop and back.</summary>
internal sealed partial class PolledConnection
{
    /// <summary>Runs the session's asynchronous work (a request handler) off the loop, then resumes here.
    /// The socket stays registered for nothing meanwhile, so a hang-up still reaches the loop.</summary>
    private void Handle()
    {
        _state = State.Handling;
        Watch(Interest.None);
        var scratch = new Scratch(); // the loop's own buffers serve its other connections meanwhile
        _session.HandleAsync(scratch).ContinueWith(
            done => _loop.Post(() => Resume(done, scratch)),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private void Resume(Task<Step> done, Scratch scratch)
    {
        try
        {
            if (_state != State.Handling)
            {
                return; // the loop ended meanwhile and closed the connection
            }

            if (_loop.HasEnded || _peerEnded || Volatile.Read(ref _abortRequested) == 1 || done.IsFaulted || done.IsCanceled)
            {
                Fail(done.Exception?.InnerException ?? new SocketException((int)SocketError.OperationAborted));
                return;
            }

            _state = State.Open;
            Apply(done.Result, scratch.Output);
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            scratch.Release();
        }
    }
}
