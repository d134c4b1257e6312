using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Unicode;

namespace Procrastinate.Dashboard.Internal;

/// <summary>
/// Markup that is safe to write as is. The only ways to get one are <see cref="Of"/>, whose
/// interpolated values are HTML-encoded unless they are already <see cref="Html"/> (as Razor
/// does), <see cref="Text"/>, and <see cref="Raw"/> for the dashboard's own constant markup.
/// Task names, arguments, lock and queue names are untrusted: they only ever reach a page through
/// an interpolation hole, never through <see cref="Raw"/>.
/// </summary>
internal readonly struct Html
{
    // All of Unicode stays readable; markup characters and quotes are still encoded, so a value
    // is safe both between tags and inside a double- or single-quoted attribute.
    internal static readonly HtmlEncoder Encoder = HtmlEncoder.Create(UnicodeRanges.All);

    private readonly string? _value;

    private Html(string value) => _value = value;

    public static Html Empty => default;

    public bool IsEmpty => string.IsNullOrEmpty(_value);

    /// <summary>Markup written by the dashboard itself. Never pass a value that came from the database or the request.</summary>
    public static Html Raw(string trustedMarkup) => new(trustedMarkup);

    /// <summary>Text, encoded.</summary>
    public static Html Text(string? text) => new(text is null ? "" : Encoder.Encode(text));

    /// <summary>Markup from an interpolated string whose values are encoded.</summary>
    public static Html Of(ref HtmlInterpolatedStringHandler handler) => handler.ToHtml();

    public static Html Join(IEnumerable<Html> parts)
    {
        var builder = new StringBuilder();
        foreach (var part in parts)
            builder.Append(part._value);
        return new Html(builder.ToString());
    }

    public static Html When(bool condition, Html html) => condition ? html : Empty;

    public override string ToString() => _value ?? "";
}

/// <summary>Builds <see cref="Html"/> from an interpolated string: literals are markup, values are encoded.</summary>
[InterpolatedStringHandler]
internal ref struct HtmlInterpolatedStringHandler
{
    private readonly StringBuilder _builder;

    public HtmlInterpolatedStringHandler(int literalLength, int formattedCount) =>
        _builder = new StringBuilder(literalLength + formattedCount * 16);

    public readonly void AppendLiteral(string value) => _builder.Append(value);

    public readonly void AppendFormatted(Html value) => _builder.Append(value.ToString());

    public readonly void AppendFormatted(string? value)
    {
        if (value is not null)
            Html.Encoder.Encode(new StringWriter(_builder, CultureInfo.InvariantCulture), value);
    }

    public readonly void AppendFormatted<T>(T value)
    {
        switch (value)
        {
            case null:
                return;
            case Html html:
                _builder.Append(html.ToString());
                return;
            case IEnumerable<Html> many:
                foreach (var html in many)
                    _builder.Append(html.ToString());
                return;
            case IFormattable formattable:
                AppendFormatted(formattable.ToString(null, CultureInfo.InvariantCulture));
                return;
            default:
                AppendFormatted(value.ToString());
                return;
        }
    }

    public readonly void AppendFormatted<T>(T value, string? format) where T : IFormattable =>
        AppendFormatted(value.ToString(format, CultureInfo.InvariantCulture));

    internal readonly Html ToHtml() => Html.Raw(_builder.ToString());
}
