using System.Management.Automation;
using KeyShell.Engine.Faults;

namespace KeyShell.Commands;

/// <summary>Defines a fault for a server to apply (Start-KeyServer -Fault): what it does and which requests it takes.</summary>
[Cmdlet(VerbsCommon.New, "KeyFault")]
[OutputType(typeof(KeyFault))]
public sealed class NewKeyFaultCommand : KeyShellCmdlet
{
    // Ranges and combinations are checked by the engine's KeyFault, so every bad value gets the same ErrorId
    // (InvalidFault) and a sentence that says which types take what.

    [Parameter(Mandatory = true, Position = 0)]
    public FaultType Type { get; set; }

    /// <summary>Delay: the hold (1000). Slice: the pause between pieces (10).</summary>
    [Parameter]
    public int DelayMilliseconds { get; set; }

    /// <summary>Delay and Slice: each hold or pause varies by up to this much either way.</summary>
    [Parameter]
    public int JitterMilliseconds { get; set; }

    /// <summary>Slice: bytes per piece (1). Truncate: bytes of the reply sent (half). Garbage: random bytes sent (16).</summary>
    [Parameter]
    public int ByteCount { get; set; }

    /// <summary>The clients it aims at, a wildcard as -like reads it.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ClientId { get; set; } = "*";

    /// <summary>The keys it aims at (exact); every key when left out.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Key { get; set; }

    [Parameter]
    public double Probability { get; set; } = 1;

    [Parameter]
    public int Every { get; set; } = 1;

    [Parameter]
    public int After { get; set; }

    [Parameter]
    public FaultDirection Direction { get; set; } = FaultDirection.Reply;

    protected override void EndProcessing()
    {
        try
        {
            WriteObject(new KeyFault(
                Type,
                Bound<int>(nameof(DelayMilliseconds)),
                Bound<int>(nameof(JitterMilliseconds)),
                Bound<int>(nameof(ByteCount)),
                Given(nameof(ClientId)) ? ClientId : null,
                Key,
                Bound<double>(nameof(Probability)),
                Bound<int>(nameof(Every)),
                Bound<int>(nameof(After)),
                Bound<FaultDirection>(nameof(Direction))));
        }
        catch (FaultDefinitionException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidFault, ErrorCategory.InvalidArgument, e.Value));
        }
    }

    private bool Given(string name) => MyInvocation.BoundParameters.ContainsKey(name);

    /// <summary>The parameter's value when the user gave it; null leaves the choice to the fault's defaults.</summary>
    private T? Bound<T>(string name)
        where T : struct =>
        MyInvocation.BoundParameters.TryGetValue(name, out var value) ? (T)LanguagePrimitives.ConvertTo(value, typeof(T), System.Globalization.CultureInfo.InvariantCulture) : null;
}
