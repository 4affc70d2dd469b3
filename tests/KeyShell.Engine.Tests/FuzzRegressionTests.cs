using KeyShell.Fuzz;

namespace KeyShell.Engine.Tests;

/// <summary>The fuzz target in the normal suite: the seed corpus, every crash found so far, and a bounded random run.</summary>
public class FuzzRegressionTests
{
    public static TheoryData<string> Inputs()
    {
        var data = new TheoryData<string>();
        foreach (var folder in new[] { "corpus", "regressions" })
        {
            var path = Path.Combine(AppContext.BaseDirectory, "Fuzz", folder);
            if (Directory.Exists(path))
            {
                foreach (var file in Directory.GetFiles(path).Where(f => !f.EndsWith(".md")).OrderBy(f => f))
                {
                    data.Add(Path.Combine(folder, Path.GetFileName(file)));
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void ReplaysWithoutBreakingAnInvariant(string input)
    {
        FuzzTarget.Run(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fuzz", input)));
    }

    [Fact]
    public void TwentyThousandRandomInputsBreakNoInvariant()
    {
        var random = new Random(42);
        var alphabet = "0123456789 \r\n\t\\x-abcABC"u8.ToArray();
        for (var i = 0; i < 20_000; i++)
        {
            var input = new byte[random.Next(1, 200)];
            random.NextBytes(input);
            if (i % 2 == 0)
            {
                // Half from the protocol's own alphabet, to reach deeper than random bytes do.
                for (var b = 1; b < input.Length; b++)
                {
                    input[b] = alphabet[input[b] % alphabet.Length];
                }
            }

            FuzzTarget.Run(input);
        }
    }
}
