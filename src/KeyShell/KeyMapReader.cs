using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using KeyShell.Engine.Protocol;

namespace KeyShell;

/// <summary>
/// Turns what -KeyMap was given (a hashtable or [pscustomobject], or the path of a .json or .psd1 file)
/// into a <see cref="KeyMap"/>. Anything but one object of keys to strings or numbers is an
/// <see cref="ArgumentException"/> whose message names the value and where it is (see <see cref="KeyMapEntries"/>).
/// </summary>
internal static class KeyMapReader
{
    public static KeyMap Read(PSCmdlet cmdlet, object value)
    {
        var baseObject = value is PSObject ps ? ps.BaseObject : value;
        return baseObject switch
        {
            IDictionary dictionary => KeyMapEntries.FromDictionary(dictionary, "-KeyMap"),
            PSCustomObject => KeyMapEntries.FromProperties((PSObject)value, "-KeyMap"),
            string path => FromFile(cmdlet, path),
            FileInfo file => FromFile(cmdlet, file.FullName),
            _ => throw new ArgumentException(
                $"-KeyMap takes a hashtable, or the path of a .json or .psd1 file; it was given {KeyMapEntries.Describe(baseObject)}."),
        };
    }

    private static KeyMap FromFile(PSCmdlet cmdlet, string given)
    {
        var path = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(given);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The key map file '{path}' does not exist.", path);
        }

        var where = $"The key map file '{path}'";
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".json" => FromJson(cmdlet, File.ReadAllText(path), where),
            ".psd1" => FromDataFile(path, where),
            _ => throw new ArgumentException($"{where} must be a .json or .psd1 file."),
        };
    }

    /// <summary>
    /// ConvertFrom-Json reads the object (as it does on Windows PowerShell 5.1 and PowerShell 7 alike); what is
    /// not an object is told apart by its first character first, since ConvertFrom-Json would enumerate an
    /// array and turn null into nothing.
    /// </summary>
    private static KeyMap FromJson(PSCmdlet cmdlet, string text, string where)
    {
        var trimmed = text.Trim().TrimStart('\uFEFF').TrimStart();
        if (trimmed.Length == 0)
        {
            throw new ArgumentException($"{where} is empty: it must hold one JSON object of key/value pairs, such as {{ \"1\": 45 }}.");
        }

        if (trimmed[0] != '{')
        {
            var kind = trimmed[0] switch
            {
                '[' => "an array",
                '"' => "a string",
                't' or 'f' => "a Boolean",
                'n' => "JSON's null",
                _ when char.IsDigit(trimmed[0]) || trimmed[0] == '-' => "a number",
                _ => "text that is not JSON",
            };
            throw new ArgumentException($"{where} holds {kind} ({KeyMapEntries.Shorten(trimmed)}), not an object of key/value pairs such as {{ \"1\": 45 }}.");
        }

        var convert = cmdlet.InvokeCommand.GetCommand("ConvertFrom-Json", CommandTypes.Cmdlet) as CmdletInfo;
        var switches = string.Empty;
        if (convert?.Parameters.ContainsKey("AsHashtable") == true)
        {
            switches += " -AsHashtable"; // PowerShell 6+: keys that differ only in case stay apart, as the protocol keeps them
        }

        if (convert?.Parameters.ContainsKey("DateKind") == true)
        {
            switches += " -DateKind String"; // PowerShell 7.5+: a date-like string stays the string it is
        }

        Collection<PSObject> result;
        try
        {
            result = cmdlet.InvokeCommand.InvokeScript($"param($Text) ConvertFrom-Json -InputObject $Text{switches}", false, System.Management.Automation.Runspaces.PipelineResultTypes.None, null, text);
        }
        catch (RuntimeException e)
        {
            throw new ArgumentException($"{where} is not valid JSON: {e.Message}", e);
        }

        var parsed = result.Count == 1 ? result[0] : null;
        return parsed?.BaseObject switch
        {
            IDictionary dictionary => KeyMapEntries.FromDictionary(dictionary, where),
            PSCustomObject => KeyMapEntries.FromProperties(parsed, where),
            _ => throw new ArgumentException($"{where} does not hold one JSON object of key/value pairs."),
        };
    }

    /// <summary>
    /// A .psd1 is parsed, never run: one hashtable of constants, as Import-PowerShellDataFile reads it, but with
    /// the parser's own message (line and column) when the file is broken, and nothing written to the error stream.
    /// </summary>
    private static KeyMap FromDataFile(string path, string where)
    {
        var ast = Parser.ParseFile(path, out _, out var errors);
        if (errors.Length > 0)
        {
            var first = errors[0];
            throw new ArgumentException($"{where} is not a valid PowerShell data file: line {first.Extent.StartLineNumber}, column {first.Extent.StartColumnNumber}: {first.Message}");
        }

        var statements = ast.EndBlock?.Statements ?? new ReadOnlyCollection<StatementAst>(new List<StatementAst>());
        if (statements.Count == 0 || ast.ParamBlock is not null || ast.BeginBlock is not null || ast.ProcessBlock is not null)
        {
            throw new ArgumentException($"{where} must hold one hashtable of key/value pairs, such as @{{ '1' = 45 }}; it holds {(statements.Count == 0 ? "nothing" : "a script")}.");
        }

        var expression = statements.Count == 1 && statements[0] is PipelineAst { PipelineElements.Count: 1 } pipeline && pipeline.PipelineElements[0] is CommandExpressionAst command
            ? command.Expression
            : null;
        if (expression is not HashtableAst hashtable)
        {
            throw new ArgumentException($"{where} holds {DescribeAst(expression, statements)}, not a hashtable of key/value pairs such as @{{ '1' = 45 }}.");
        }

        object? value;
        try
        {
            value = hashtable.SafeGetValue();
        }
        catch (Exception e) when (e is InvalidOperationException || e is RuntimeException)
        {
            var dynamic = hashtable.KeyValuePairs.Select(p => p.Item2).FirstOrDefault(v => !IsConstant(v));
            var shown = dynamic is null ? string.Empty : $": line {dynamic.Extent.StartLineNumber}, {KeyMapEntries.Shorten(dynamic.Extent.Text)}";
            throw new ArgumentException($"{where} holds a value that is not a constant{shown}. A data file holds only strings, numbers and other constants.", e);
        }

        return KeyMapEntries.FromDictionary((IDictionary)value!, where);
    }

    private static bool IsConstant(Ast value)
    {
        try
        {
            value.SafeGetValue();
            return true;
        }
        catch (Exception e) when (e is InvalidOperationException || e is RuntimeException)
        {
            return false;
        }
    }

    private static string DescribeAst(ExpressionAst? expression, IReadOnlyCollection<StatementAst> statements)
    {
        var kind = expression switch
        {
            null => statements.Count > 1 ? "several statements" : "a command",
            ArrayLiteralAst or ArrayExpressionAst => "an array",
            StringConstantExpressionAst or ExpandableStringExpressionAst => "a string",
            ConstantExpressionAst => "a number",
            VariableExpressionAst variable when variable.VariablePath.UserPath.Equals("null", StringComparison.OrdinalIgnoreCase) => "$null",
            VariableExpressionAst variable when variable.VariablePath.UserPath.Equals("true", StringComparison.OrdinalIgnoreCase)
                || variable.VariablePath.UserPath.Equals("false", StringComparison.OrdinalIgnoreCase) => "a Boolean",
            _ => "an expression",
        };
        var text = expression?.Extent.Text ?? statements.First().Extent.Text;
        return $"{kind} ({KeyMapEntries.Shorten(text)})";
    }
}
