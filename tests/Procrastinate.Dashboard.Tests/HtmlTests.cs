using Procrastinate.Dashboard.Internal;

namespace Procrastinate.Dashboard.Tests;

/// <summary>Values interpolated into markup are encoded unless they are markup already.</summary>
public sealed class HtmlTests
{
    [Fact]
    public void Interpolated_strings_are_encoded_for_text_and_attributes()
    {
        var name = "<script>alert('x')</script>\"&";
        var html = Html.Of($"""<a title="{name}">{name}</a>""").ToString();
        Assert.Equal("<a title=\"&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&amp;\">&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&amp;</a>", html);
    }

    [Fact]
    public void Markup_is_not_encoded_twice_and_sequences_are_joined()
    {
        var inner = Html.Of($"<b>{"a<b"}</b>");
        IEnumerable<Html> items = [Html.Of($"<i>{1}</i>"), Html.Of($"<i>{2}</i>")];
        Assert.Equal("<p><b>a&lt;b</b><i>1</i><i>2</i></p>", Html.Of($"<p>{inner}{items}</p>").ToString());
        Assert.Equal("<p><i>x</i></p>", Html.Of($"<p>{new List<Html> { Html.Of($"<i>{"x"}</i>") }}</p>").ToString());
    }

    [Fact]
    public void Non_ascii_text_stays_readable_and_numbers_use_the_invariant_culture()
    {
        var previous = System.Globalization.CultureInfo.CurrentCulture;
        System.Globalization.CultureInfo.CurrentCulture = new System.Globalization.CultureInfo("fr-FR");
        try
        {
            Assert.Equal("<td>Zoë 1.5 日本</td>", Html.Of($"<td>{"Zoë"} {1.5} {"日本"}</td>").ToString());
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = previous;
        }
    }

    [Fact]
    public void Null_values_write_nothing() =>
        Assert.Equal("<td></td>", Html.Of($"<td>{(string?)null}{(long?)null}</td>").ToString());
}
