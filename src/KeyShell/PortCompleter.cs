using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace KeyShell;

/// <summary>Completes -Port with the ports of the session's running servers.</summary>
public sealed class PortCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        ServerRegistry.Running()
            .Select(s => s.Port.ToString(CultureInfo.InvariantCulture))
            .Distinct()
            .Where(p => p.StartsWith(wordToComplete ?? string.Empty, System.StringComparison.Ordinal))
            .Select(p => new CompletionResult(p, p, CompletionResultType.ParameterValue, $"KeyServer on port {p}"));
}
