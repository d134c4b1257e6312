using System.Text;

namespace Procrastinate.Cli.Internal;

/// <summary>
/// Splits a shell line into words as a POSIX shell does: whitespace separates; '...' keeps
/// everything literally; "..." keeps everything but \" and \\; a backslash outside quotes escapes
/// the next character. So <c>defer sum '{"a": 3, "b": 5}'</c> reads as in bash.
/// </summary>
internal static class ShellWords
{
    public static List<string> Split(string line)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            switch (c)
            {
                case ' ' or '\t':
                    if (inWord)
                        words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                    break;
                case '\'':
                    var close = line.IndexOf('\'', i + 1);
                    if (close < 0)
                        throw new CliUsageException("unterminated ' quote.");
                    word.Append(line, i + 1, close - i - 1);
                    i = close;
                    inWord = true;
                    break;
                case '"':
                    i++;
                    while (i < line.Length && line[i] != '"')
                    {
                        if (line[i] == '\\' && i + 1 < line.Length && line[i + 1] is '"' or '\\')
                            i++;
                        word.Append(line[i]);
                        i++;
                    }
                    if (i >= line.Length)
                        throw new CliUsageException("unterminated \" quote.");
                    inWord = true;
                    break;
                case '\\' when i + 1 < line.Length:
                    word.Append(line[++i]);
                    inWord = true;
                    break;
                default:
                    word.Append(c);
                    inWord = true;
                    break;
            }
        }
        if (inWord)
            words.Add(word.ToString());
        return words;
    }
}
