using System;

namespace KeyShell.Engine.Faults;

/// <summary>A fault defined with parameters that do not go together or are out of range; ParamName names the
/// parameter (New-KeyFault's parameters have the same names), <see cref="Value"/> holds what was given.</summary>
public sealed class FaultDefinitionException : ArgumentException
{
    private readonly string _reason;

    public FaultDefinitionException(string message, string paramName, object? value)
        : base(message, paramName)
    {
        _reason = message;
        Value = value;
    }

    /// <summary>The value given for the parameter.</summary>
    public object? Value { get; }

    /// <summary>The sentence alone: no " (Parameter '...')" appended, as ArgumentException does.</summary>
    public override string Message => _reason;
}
