using System.Text;
using System.Text.Json;

namespace Procrastinate.Internal;

/// <summary>
/// Checks job arguments before they reach the database: a JSON object, within the size limit,
/// with nothing PostgreSQL's jsonb refuses (<c>\u0000</c>, unpaired surrogates).
/// </summary>
internal static class JsonArgs
{
    /// <summary>Validates JSON text from an untrusted source (the CLI, defer by name).</summary>
    public static string ValidateUntrusted(string json, int maxBytes)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonValueKind kind;
        try
        {
            using var doc = JsonDocument.Parse(json);
            kind = doc.RootElement.ValueKind;
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"The job arguments are not valid JSON: {e.Message}", nameof(json), e);
        }
        if (kind != JsonValueKind.Object)
            throw new ArgumentException($"The job arguments must be a JSON object (of named arguments), not {Describe(kind)}.", nameof(json));
        return ValidateSerialized(json, maxBytes);
    }

    /// <summary>Validates JSON text produced by our serializer.</summary>
    public static string ValidateSerialized(string json, int maxBytes)
    {
        var start = 0;
        while (start < json.Length && char.IsWhiteSpace(json[start]))
            start++;
        if (start >= json.Length || json[start] != '{')
            throw new ArgumentException("The job arguments must serialize to a JSON object (of named arguments); use a record or class type.", nameof(json));
        var bytes = Encoding.UTF8.GetByteCount(json);
        if (bytes > maxBytes)
            throw new ArgumentException($"The job arguments are {bytes} bytes of JSON; the limit is {maxBytes} bytes (AppOptions.MaxArgsBytes).", nameof(json));
        CheckCharacters(json);
        return json;
    }

    private static void CheckCharacters(string json)
    {
        var pendingHigh = false;
        for (var i = 0; i < json.Length; i++)
        {
            var c = json[i];
            int code;
            if (c == '\\' && i + 1 < json.Length)
            {
                if (json[i + 1] != 'u' || i + 5 >= json.Length)
                {
                    // A short escape such as \n or \": an ordinary character.
                    if (pendingHigh)
                        throw Unpaired();
                    i++;
                    continue;
                }
                code = Convert.ToInt32(json.Substring(i + 2, 4), 16);
                i += 5;
            }
            else
            {
                code = c;
            }

            if (code == 0)
                throw new ArgumentException("The job arguments contain a NUL character (\\u0000), which PostgreSQL's jsonb cannot store.", nameof(json));
            if (code is >= 0xD800 and <= 0xDBFF)
            {
                if (pendingHigh)
                    throw Unpaired();
                pendingHigh = true;
            }
            else if (code is >= 0xDC00 and <= 0xDFFF)
            {
                if (!pendingHigh)
                    throw Unpaired();
                pendingHigh = false;
            }
            else if (pendingHigh)
            {
                throw Unpaired();
            }
        }
        if (pendingHigh)
            throw Unpaired();

        static ArgumentException Unpaired() =>
            new("The job arguments contain an unpaired UTF-16 surrogate, which is not valid Unicode.", nameof(json));
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };
}
