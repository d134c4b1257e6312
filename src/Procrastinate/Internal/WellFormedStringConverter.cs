using System.Text.Json;
using System.Text.Json.Serialization;

namespace Procrastinate.Internal;

/// <summary>
/// Writes strings as System.Text.Json does, but refuses ill-formed UTF-16 (an unpaired
/// surrogate) instead of silently replacing it with U+FFFD: job arguments are stored exactly
/// or not at all.
/// </summary>
internal sealed class WellFormedStringConverter : JsonConverter<string>
{
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetString();

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                i++;
            else if (char.IsSurrogate(c))
                throw new ArgumentException("The job arguments contain an unpaired UTF-16 surrogate, which is not valid Unicode.");
        }
        writer.WriteStringValue(value);
    }
}
