using System;
using System.Globalization;
using System.IO;
using System.Text;

namespace KeyShell.Engine.Client;

/// <summary>
/// A small JSON writer for exports (the netstandard2.0 build has no JSON library of its own): objects,
/// arrays, strings, invariant numbers, Booleans and null, indented two spaces.
/// </summary>
internal sealed class JsonText
{
    private readonly TextWriter _writer;
    private int _depth;
    private bool _first = true;

    public JsonText(TextWriter writer) => _writer = writer;

    public void BeginObject(string? name = null) => Begin(name, '{');

    public void EndObject() => End('}');

    public void BeginArray(string? name = null) => Begin(name, '[');

    public void EndArray() => End(']');

    public void String(string name, string? value) => Value(name, value is null ? "null" : Quote(value));

    public void Number(string name, double? value) =>
        Value(name, value is { } number && !double.IsNaN(number) && !double.IsInfinity(number) ? number.ToString("R", CultureInfo.InvariantCulture) : "null");

    public void Number(string name, long value) => Value(name, value.ToString(CultureInfo.InvariantCulture));

    public void Boolean(string name, bool value) => Value(name, value ? "true" : "false");

    /// <summary>Milliseconds, as a number (null for no time).</summary>
    public void Milliseconds(string name, TimeSpan? value) => Number(name, value?.TotalMilliseconds);

    /// <summary>An instant as ISO 8601 UTC text.</summary>
    public void Instant(string name, DateTime value) => String(name, value.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture));

    /// <summary>An array element that is a string.</summary>
    public void Item(string value) => Value(null, Quote(value));

    private void Begin(string? name, char bracket)
    {
        Separate(name);
        _writer.Write(bracket);
        _depth++;
        _first = true;
    }

    private void End(char bracket)
    {
        _depth--;
        if (!_first)
        {
            NewLine();
        }

        _writer.Write(bracket);
        _first = false;
        if (_depth == 0)
        {
            _writer.WriteLine();
        }
    }

    private void Value(string? name, string text)
    {
        Separate(name);
        _writer.Write(text);
    }

    private void Separate(string? name)
    {
        if (!_first)
        {
            _writer.Write(',');
        }

        if (_depth > 0)
        {
            NewLine();
        }

        _first = false;
        if (name is not null)
        {
            _writer.Write(Quote(name));
            _writer.Write(": ");
        }
    }

    private void NewLine()
    {
        _writer.WriteLine();
        _writer.Write(new string(' ', 2 * _depth));
    }

    private static string Quote(string text)
    {
        var quoted = new StringBuilder(text.Length + 2).Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': quoted.Append("\\\""); break;
                case '\\': quoted.Append("\\\\"); break;
                case '\n': quoted.Append("\\n"); break;
                case '\r': quoted.Append("\\r"); break;
                case '\t': quoted.Append("\\t"); break;
                default:
                    if (c < 0x20)
                    {
                        quoted.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        quoted.Append(c);
                    }

                    break;
            }
        }

        return quoted.Append('"').ToString();
    }
}
