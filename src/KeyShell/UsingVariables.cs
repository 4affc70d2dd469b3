using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Text;

namespace KeyShell;

/// <summary>
/// <c>$using:</c> in -Handler and -InitializationScript, as ForEach-Object -Parallel has it: each variable is read
/// once, from the scope Start-KeyServer runs in, when the server starts; the handler runspaces see its value
/// (the same object, for reference types). A <c>$using:</c> whose variable does not exist is an error then,
/// not a failure on every request. <c>$using:</c> inside a script block nested in the handler (ForEach-Object
/// -Parallel, Start-ThreadJob) belongs to that script block and is left alone.
/// </summary>
internal sealed class UsingVariables
{
    private const string Prefix = "__KeyShellUsing";

    private readonly PSCmdlet _cmdlet;
    private readonly Dictionary<string, string> _names = new(StringComparer.OrdinalIgnoreCase);

    public UsingVariables(PSCmdlet cmdlet) => _cmdlet = cmdlet;

    /// <summary>The variables the runspaces define before they run anything: name, and the value read at the start.</summary>
    public Dictionary<string, object?> Values { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The script's text with each of its own <c>$using:name</c> made a variable of the runspaces.</summary>
    /// <exception cref="UsingVariableException">A <c>$using:</c> variable does not exist in the caller's scope.</exception>
    public string Rewrite(ScriptBlock script, string parameter)
    {
        var text = script.ToString();
        var ast = Parser.ParseInput(text, out _, out _);
        var replacements = ast.FindAll(a => a is UsingExpressionAst, searchNestedScriptBlocks: true)
            .Cast<UsingExpressionAst>()
            .Where(u => OwnScriptBlock(u) == ast)
            .Select(u => UsingExpressionAst.ExtractUsingVariable(u))
            .OrderByDescending(v => v.Extent.StartOffset)
            .ToList();
        var rewritten = new StringBuilder(text);
        foreach (var variable in replacements)
        {
            var name = NameFor(variable, parameter);
            rewritten.Remove(variable.Extent.StartOffset, variable.Extent.EndOffset - variable.Extent.StartOffset);
            rewritten.Insert(variable.Extent.StartOffset, "${" + name + "}");
        }

        return rewritten.ToString();
    }

    private static Ast? OwnScriptBlock(Ast ast)
    {
        var parent = ast.Parent;
        while (parent is not null && parent is not ScriptBlockAst)
        {
            parent = parent.Parent;
        }

        return parent;
    }

    private string NameFor(VariableExpressionAst variable, string parameter)
    {
        var path = variable.VariablePath.UserPath;
        if (_names.TryGetValue(path, out var known))
        {
            return known;
        }

        if (!TryRead(variable.VariablePath, out var value))
        {
            throw new UsingVariableException(
                $"{parameter} uses {variable.Extent.Text} (line {variable.Extent.StartLineNumber}), but there is no variable '{path}' where Start-KeyServer runs. " +
                "A $using: variable is read once, when the server starts: define it first, or pass the value with -ArgumentList.");
        }

        var name = Prefix + _names.Count;
        _names.Add(path, name);
        Values.Add(name, value);
        return name;
    }

    private bool TryRead(VariablePath path, out object? value)
    {
        value = null;
        var state = _cmdlet.SessionState;
        if (!string.IsNullOrEmpty(path.DriveName) && !path.DriveName.Equals("variable", StringComparison.OrdinalIgnoreCase))
        {
            // $using:env:NAME and other provider paths.
            if (!state.InvokeProvider.Item.Exists(path.UserPath))
            {
                return false;
            }

            value = _cmdlet.InvokeCommand.InvokeScript("${" + path.UserPath + "}").FirstOrDefault()?.BaseObject;
            return true;
        }

        var variable = state.PSVariable.Get(path.UserPath);
        if (variable is null)
        {
            return false;
        }

        value = variable.Value;
        return true;
    }
}

/// <summary>A <c>$using:</c> variable that does not exist where Start-KeyServer runs.</summary>
internal sealed class UsingVariableException : Exception
{
    public UsingVariableException(string message)
        : base(message)
    {
    }
}
