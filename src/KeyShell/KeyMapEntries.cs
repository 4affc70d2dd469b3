using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using System.Numerics;
using KeyShell.Engine.Protocol;

namespace KeyShell;

/// <summary>
/// Checks a key map's pairs as -KeyMap's help promises: keys are protocol tokens, values are strings or
/// numbers of one line with something in them. Anything else (a nested object or list, $null, '', a
/// Boolean, a date) is an <see cref="ArgumentException"/> naming the key, the value and where they came from
/// (-KeyMap or the file): never a key map that answers "System.Collections.Hashtable" or nothing at all.
/// </summary>
internal static class KeyMapEntries
{
    private const int ShownLength = 60;

    public static KeyMap FromDictionary(IDictionary dictionary, string where) =>
        Build(dictionary.Cast<DictionaryEntry>().Select(e => (Unwrap(e.Key), Unwrap(e.Value))), where);

    public static KeyMap FromProperties(PSObject value, string where) =>
        Build(value.Properties.Select(p => ((object?)p.Name, Unwrap(p.Value))), where);

    /// <summary>A value as a message shows it: its kind, and its text (shortened).</summary>
    public static string Describe(object? value) => value switch
    {
        null => "$null",
        string text => $"a string ('{Shorten(text)}')",
        bool flag => $"a Boolean (${flag.ToString().ToLowerInvariant()})",
        IDictionary or PSObject { BaseObject: PSCustomObject } => $"a nested object ({Shorten(Show(value))})",
        IEnumerable => $"a list ({Shorten(Show(value))})",
        DateTime or DateTimeOffset => $"a date ({Shorten(Show(value))})",
        _ when IsNumber(value) => $"a number ({Shorten(Show(value))})",
        _ => $"a {value.GetType().Name} ({Shorten(Show(value))})",
    };

    public static string Shorten(string text)
    {
        var oneLine = string.Join(" ", text.Split(new[] { '\r', '\n', '\t' }, StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()));
        return oneLine.Length <= ShownLength ? oneLine : oneLine.Substring(0, ShownLength - 3) + "...";
    }

    private static KeyMap Build(IEnumerable<(object? Key, object? Value)> pairs, string where)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in pairs)
        {
            var name = KeyText(key, where);
            if (values.ContainsKey(name))
            {
                throw new ArgumentException($"{where}: the key '{name}' appears twice (a number and a string of the same text are one key).");
            }

            values.Add(name, ValueText(name, value, where));
        }

        if (values.Count == 0)
        {
            throw new ArgumentException($"{where} has no keys: give at least one key and its value, such as @{{ '1' = 45 }}.");
        }

        return new KeyMap(values);
    }

    private static string KeyText(object? key, string where)
    {
        var text = key is string s ? s : IsNumber(key) ? Convert.ToString(key, CultureInfo.InvariantCulture) : null;
        if (text is null)
        {
            throw new ArgumentException($"{where}: the key {Describe(key)} is not a string or a number.");
        }

        if (text.Length == 0 || text.Any(c => c < 0x21 || c > 0x7E))
        {
            throw new ArgumentException($"{where}: the key '{Shorten(text)}' is not a protocol token: 1 or more visible ASCII characters, no spaces.");
        }

        return text;
    }

    private static string ValueText(string key, object? value, string where)
    {
        string? text = value switch
        {
            string s => s,
            char c => c.ToString(),
            _ when IsNumber(value) => Convert.ToString(value, CultureInfo.InvariantCulture),
            _ => null,
        };
        if (text is null)
        {
            var empty = value is null ? " (empty)" : string.Empty;
            throw new ArgumentException($"{where}: the value of key '{key}' is {Describe(value)}{empty}; a value must be a string or a number.");
        }

        if (text.Trim().Length == 0)
        {
            throw new ArgumentException($"{where}: the value of key '{key}' is empty ('{text}'); a value must be a string or a number with something in it.");
        }

        if (text.IndexOf('\n') >= 0 || text.IndexOf('\r') >= 0)
        {
            throw new ArgumentException($"{where}: the value of key '{key}' ('{Shorten(text)}') has a line break; a reply is one line.");
        }

        return text;
    }

    private static bool IsNumber(object? value) => value is byte or sbyte or short or ushort or int or uint or long or ulong or float or double or decimal or BigInteger;

    private static object? Unwrap(object? value) => value is PSObject ps && ps.BaseObject is not PSCustomObject ? ps.BaseObject : value;

    /// <summary>A nested value in the notation of its source's kind: @{...} for objects, lists joined with ", ".</summary>
    private static string Show(object? value) => value switch
    {
        null => "$null",
        string text => $"'{text}'",
        bool flag => "$" + flag.ToString().ToLowerInvariant(),
        IDictionary dictionary => "@{" + string.Join("; ", dictionary.Cast<DictionaryEntry>().Select(e => $"{e.Key} = {Show(Unwrap(e.Value))}")) + "}",
        PSObject { BaseObject: PSCustomObject } custom => "@{" + string.Join("; ", custom.Properties.Select(p => $"{p.Name} = {Show(Unwrap(p.Value))}")) + "}",
        IEnumerable list => "@(" + string.Join(", ", list.Cast<object?>().Select(v => Show(Unwrap(v)))) + ")",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };
}
