using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace KeyShell.Engine.Protocol;

/// <summary>
/// An immutable map from key tokens to reply texts, looked up by the request's bytes with no allocation.
/// Replies are encoded once, when the map is built. Immutability is what lets a running server swap
/// its map atomically: a request sees the old map or the new one, never half of one.
/// </summary>
public sealed class KeyMap
{
    private readonly byte[][] _keys;
    private readonly byte[][] _replies;
    private readonly int[] _slots; // open addressing: index + 1 into _keys, 0 for empty
    private readonly Dictionary<string, string> _values;

    /// <summary>The seed's map: 0→12, 1→45, 2→78, 3→23, 4→56, 5→89, 6→34, 7→67, 8→90, 9→10.</summary>
    public static KeyMap Seed { get; } = new(
        new Dictionary<string, string>
        {
            ["0"] = "12", ["1"] = "45", ["2"] = "78", ["3"] = "23", ["4"] = "56",
            ["5"] = "89", ["6"] = "34", ["7"] = "67", ["8"] = "90", ["9"] = "10",
        },
        Replies.SeedUnknownKey);

    /// <param name="values">Key tokens (visible ASCII, no spaces) and their values.</param>
    /// <param name="unknownKeyReply">The reply to a key outside the map; must start with "Error:".</param>
    public KeyMap(IEnumerable<KeyValuePair<string, string>> values, string unknownKeyReply = Replies.UnknownKey)
    {
        if (values is null)
        {
            throw new ArgumentNullException(nameof(values));
        }

        if (unknownKeyReply is null || !unknownKeyReply.StartsWith(Replies.ErrorPrefix, StringComparison.Ordinal) || !IsSingleLine(unknownKeyReply))
        {
            throw new ArgumentException("The unknown-key reply must be one line starting with 'Error:'.", nameof(unknownKeyReply));
        }

        _values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in values)
        {
            var key = pair.Key;
            var value = pair.Value ?? string.Empty;
            if (!IsKeyToken(key))
            {
                throw new ArgumentException($"The key '{key}' is not a protocol token: 1 or more visible ASCII characters, no spaces.", nameof(values));
            }

            if (!IsSingleLine(value))
            {
                throw new ArgumentException($"The value of key '{key}' must be a single line.", nameof(values));
            }

            if (_values.ContainsKey(key))
            {
                throw new ArgumentException($"The key '{key}' appears twice.", nameof(values));
            }

            _values.Add(key, value);
        }

        UnknownKeyReply = unknownKeyReply;
        UnknownKeyReplyBytes = Encoding.UTF8.GetBytes(unknownKeyReply);
        _keys = new byte[_values.Count][];
        _replies = new byte[_values.Count][];
        _slots = new int[SlotCountFor(_values.Count)];
        var index = 0;
        foreach (var pair in _values)
        {
            _keys[index] = Encoding.ASCII.GetBytes(pair.Key);
            _replies[index] = Encoding.UTF8.GetBytes(Replies.ForKey(pair.Key, pair.Value));
            var slot = FindSlot(_keys[index]);
            _slots[slot] = index + 1;
            index++;
        }
    }

    /// <summary>Builds a map from any key/value objects (a hashtable, say); numbers are written invariantly.</summary>
    public static KeyMap FromObjects(IEnumerable<KeyValuePair<object, object?>> values) =>
        new(Convert(values));

    public int Count => _values.Count;

    public string UnknownKeyReply { get; }

    internal byte[] UnknownKeyReplyBytes { get; }

    /// <summary>The keys and values, for display.</summary>
    public IReadOnlyDictionary<string, string> Values => _values;

    /// <summary>The encoded reply for a key token, or the unknown-key reply. No allocation.</summary>
    public byte[] ReplyFor(ReadOnlySpan<byte> key, out bool found)
    {
        var entry = _slots[FindSlot(key)];
        found = entry != 0;
        return found ? _replies[entry - 1] : UnknownKeyReplyBytes;
    }

    private int FindSlot(ReadOnlySpan<byte> key)
    {
        var mask = _slots.Length - 1;
        var slot = (int)(Hash(key) & (uint)mask);
        while (true)
        {
            var entry = _slots[slot];
            if (entry == 0 || key.SequenceEqual(_keys[entry - 1]))
            {
                return slot;
            }

            slot = (slot + 1) & mask;
        }
    }

    private static uint Hash(ReadOnlySpan<byte> key)
    {
        var hash = 2166136261u; // FNV-1a
        foreach (var b in key)
        {
            hash = (hash ^ b) * 16777619u;
        }

        return hash;
    }

    private static int SlotCountFor(int count)
    {
        var slots = 16;
        while (slots < count * 2)
        {
            slots <<= 1;
        }

        return slots;
    }

    private static bool IsKeyToken(string? key)
    {
        if (string.IsNullOrEmpty(key))
        {
            return false;
        }

        foreach (var c in key!)
        {
            if (c < 0x21 || c > 0x7E)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsSingleLine(string text) => text.IndexOf('\n') < 0 && text.IndexOf('\r') < 0;

    private static IEnumerable<KeyValuePair<string, string>> Convert(IEnumerable<KeyValuePair<object, object?>> values)
    {
        foreach (var pair in values)
        {
            yield return new KeyValuePair<string, string>(
                System.Convert.ToString(pair.Key, CultureInfo.InvariantCulture) ?? string.Empty,
                System.Convert.ToString(pair.Value, CultureInfo.InvariantCulture) ?? string.Empty);
        }
    }
}
