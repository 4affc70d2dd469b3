using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using KeyShell.Engine.Protocol;

namespace KeyShell;

/// <summary>Turns what -KeyMap was given (a hashtable, or the path of a .json or .psd1 file) into a <see cref="KeyMap"/>.</summary>
internal static class KeyMapReader
{
    public static KeyMap Read(PSCmdlet cmdlet, object value)
    {
        var baseObject = value is PSObject ps ? ps.BaseObject : value;
        return baseObject switch
        {
            IDictionary dictionary => FromDictionary(dictionary),
            string path => FromFile(cmdlet, cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path)),
            _ => throw new ArgumentException("-KeyMap takes a hashtable, or the path of a .json or .psd1 file."),
        };
    }

    private static KeyMap FromDictionary(IDictionary dictionary) =>
        KeyMap.FromObjects(dictionary.Cast<DictionaryEntry>().Select(e => new KeyValuePair<object, object?>(e.Key, Unwrap(e.Value))));

    private static KeyMap FromFile(PSCmdlet cmdlet, string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The key map file '{path}' does not exist.", path);
        }

        var extension = Path.GetExtension(path).ToLowerInvariant();
        var script = extension switch
        {
            ".psd1" => "param($p) Import-PowerShellDataFile -LiteralPath $p",
            ".json" => "param($p) $o = Get-Content -LiteralPath $p -Raw | ConvertFrom-Json; $h = @{}; foreach ($q in $o.PSObject.Properties) { $h[$q.Name] = $q.Value }; $h",
            _ => throw new ArgumentException($"The key map file '{path}' must be a .json or .psd1 file."),
        };
        var result = cmdlet.InvokeCommand.InvokeScript(script, false, System.Management.Automation.Runspaces.PipelineResultTypes.None, null, path);
        if (result.Count != 1 || Unwrap(result[0]) is not IDictionary dictionary)
        {
            throw new ArgumentException($"The key map file '{path}' must hold one object of key/value pairs.");
        }

        return FromDictionary(dictionary);
    }

    private static object? Unwrap(object? value) => value is PSObject ps ? ps.BaseObject : value;
}
