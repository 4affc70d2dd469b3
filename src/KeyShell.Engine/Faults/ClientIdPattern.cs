using System;
using System.Collections.Generic;
using System.Text;

namespace KeyShell.Engine.Faults;

/// <summary>
/// A client id wildcard, as PowerShell's -like reads it: <c>*</c> any run of characters, <c>?</c> one
/// character, <c>[abc]</c> and <c>[a-c]</c> one of a set, a backtick escapes the next character; case is
/// ignored (ASCII). Matched over the request's bytes, without allocating.
/// </summary>
public sealed class ClientIdPattern
{
    private const byte AnyRun = 1, AnyOne = 2, Literal = 3, Set = 4;

    private readonly (byte Kind, byte Value, int SetIndex)[] _tokens;
    private readonly List<bool[]> _sets = new();

    public ClientIdPattern(string pattern)
    {
        if (string.IsNullOrEmpty(pattern))
        {
            throw new FaultDefinitionException("The client id pattern is empty: give a wildcard such as '*', '3' or 'worker-*'.", "ClientId", pattern);
        }

        Text = pattern;
        _tokens = Compile(pattern);
        MatchesAll = _tokens.Length > 0 && Array.TrueForAll(_tokens, t => t.Kind == AnyRun);
    }

    /// <summary>Any client at all.</summary>
    public static ClientIdPattern Any { get; } = new("*");

    public string Text { get; }

    /// <summary>True for <c>*</c> (or <c>**</c>...): every client matches.</summary>
    public bool MatchesAll { get; }

    public bool IsMatch(string clientId) => IsMatch(Encoding.ASCII.GetBytes(clientId ?? string.Empty));

    /// <summary>Whether the client id (visible ASCII bytes) matches the whole pattern.</summary>
    public bool IsMatch(ReadOnlySpan<byte> clientId)
    {
        if (MatchesAll)
        {
            return true;
        }

        // Iterative glob matching: on a mismatch, go back to the last '*' and let it take one more byte.
        int t = 0, c = 0, starToken = -1, starClient = 0;
        while (c < clientId.Length)
        {
            if (t < _tokens.Length && _tokens[t].Kind == AnyRun)
            {
                starToken = t++;
                starClient = c;
            }
            else if (t < _tokens.Length && Matches(_tokens[t], clientId[c]))
            {
                t++;
                c++;
            }
            else if (starToken >= 0)
            {
                t = starToken + 1;
                c = ++starClient;
            }
            else
            {
                return false;
            }
        }

        while (t < _tokens.Length && _tokens[t].Kind == AnyRun)
        {
            t++;
        }

        return t == _tokens.Length;
    }

    public override string ToString() => Text;

    private bool Matches((byte Kind, byte Value, int SetIndex) token, byte b) => token.Kind switch
    {
        AnyOne => true,
        Literal => Lower(b) == token.Value,
        _ => _sets[token.SetIndex][b],
    };

    private static byte Lower(byte b) => b >= (byte)'A' && b <= (byte)'Z' ? (byte)(b + 32) : b;

    private (byte, byte, int)[] Compile(string pattern)
    {
        var tokens = new List<(byte, byte, int)>();
        for (var i = 0; i < pattern.Length; i++)
        {
            var ch = pattern[i];
            if (ch > 0x7E || ch < 0x20)
            {
                throw Invalid(pattern, "a client id is visible ASCII only");
            }

            switch (ch)
            {
                case '*':
                    tokens.Add((AnyRun, 0, 0));
                    break;
                case '?':
                    tokens.Add((AnyOne, 0, 0));
                    break;
                case '`' when i + 1 < pattern.Length:
                    tokens.Add((Literal, Lower((byte)pattern[++i]), 0));
                    break;
                case '[':
                    i = CompileSet(pattern, i, out var set);
                    _sets.Add(set);
                    tokens.Add((Set, 0, _sets.Count - 1));
                    break;
                default:
                    tokens.Add((Literal, Lower((byte)ch), 0));
                    break;
            }
        }

        return tokens.ToArray();
    }

    /// <summary>Reads <c>[...]</c> from <paramref name="open"/>; returns the index of its <c>]</c>.</summary>
    private static int CompileSet(string pattern, int open, out bool[] set)
    {
        set = new bool[256];
        var i = open + 1;
        var any = false;
        while (i < pattern.Length && pattern[i] != ']')
        {
            var from = pattern[i] == '`' && i + 1 < pattern.Length ? pattern[++i] : pattern[i];
            var to = from;
            if (i + 2 < pattern.Length && pattern[i + 1] == '-' && pattern[i + 2] != ']')
            {
                to = pattern[i + 2];
                i += 2;
            }

            if (from < 0x20 || from > 0x7E || to < 0x20 || to > 0x7E)
            {
                throw Invalid(pattern, "a client id is visible ASCII only");
            }

            if (to < from)
            {
                throw Invalid(pattern, $"the range {from}-{to} runs backwards");
            }

            for (var c = from; c <= to; c++)
            {
                set[Lower((byte)c)] = true;
                set[Upper((byte)c)] = true;
            }

            any = true;
            i++;
        }

        if (i >= pattern.Length)
        {
            throw Invalid(pattern, "a '[' has no closing ']'");
        }

        if (!any)
        {
            throw Invalid(pattern, "'[]' holds no character");
        }

        return i;
    }

    private static byte Upper(byte b) => b >= (byte)'a' && b <= (byte)'z' ? (byte)(b - 32) : b;

    private static FaultDefinitionException Invalid(string pattern, string why) =>
        new($"The client id pattern '{pattern}' is not a valid wildcard: {why}.", "ClientId", pattern);
}
