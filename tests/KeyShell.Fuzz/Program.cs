using System.IO;
using SharpFuzz;

namespace KeyShell.Fuzz;

/// <summary>The afl++ harness: `build.ps1 -Task Fuzz -Minutes N` instruments the engine and runs it.</summary>
public static class Program
{
    public static void Main() => Fuzzer.OutOfProcess.Run(stream =>
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        FuzzTarget.Run(copy.ToArray());
    });
}
