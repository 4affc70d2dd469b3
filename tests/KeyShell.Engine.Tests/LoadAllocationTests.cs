using System.Text;
using KeyShell.Engine.Client;
using KeyShell.Engine.Sessions;
using KeyShell.Engine.Transport;

namespace KeyShell.Engine.Tests;

/// <summary>
/// A load worker allocates nothing per request: its batch written, each reply read, checked against its key
/// and recorded (HdrHistogram) with no allocation, counted on this thread alone. In the allocation tests'
/// collection, so no other test's meter listener runs meanwhile.
/// </summary>
[Collection(nameof(AllocationTests))]
public class LoadAllocationTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    public void ALoadWorkerAllocatesNothingPerReply(int pipeline)
    {
        var generator = new LoadGenerator(new LoadOptions { Count = 0, Pipeline = pipeline, Keys = new[] { "a", "b", "c" } }) { MeasureFrom = 0 };
        var session = new LoadSession(generator, 0, long.MaxValue, new LoadRecorder(1).StripeOf(0));
        var scratch = new Scratch();
        var replies = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 3 * pipeline).Select(i => $"Response for the key {"abc"[i % 3]} : 1\n")));
        Assert.Equal(Step.Receive, session.Opened(new IdleConnection(), scratch));
        var rounds = 0;

        // Batches of the pipeline's size take keys a, b, c in turn: three batches answer the replies above once.
        void Answer(int times)
        {
            for (var i = 0; i < times; i++)
            {
                for (var batch = 0; batch < 3; batch++)
                {
                    scratch.Output.Clear();
                    var step = session.Received(replies.AsSpan(batch * replies.Length / 3, replies.Length / 3), scratch);
                    rounds += step == Step.Receive && scratch.Output.Length > 0 ? 1 : 0;
                }
            }
        }

        Answer(100); // warm up: the JIT, the output buffer's size
        var before = GC.GetAllocatedBytesForCurrentThread();
        Answer(10_000);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(3 * 10_100, rounds); // every reply answered, every batch followed by the next
        Assert.Equal(0, allocated);
    }

    private sealed class IdleConnection : IConnection
    {
        public int BlockedSince => 0;

        public void Abort()
        {
        }

        public void CloseWhenIdle()
        {
        }

        public bool TryClaimIdle() => false;

        public void CloseClaimed()
        {
        }
    }
}
