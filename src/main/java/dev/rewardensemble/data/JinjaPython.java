package dev.rewardensemble.data;

import com.hubspot.jinjava.objects.SafeString;
import com.hubspot.jinjava.objects.collections.PyList;
import java.beans.FeatureDescriptor;
import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * What Python gives Jinja2 templates and Jinjava lacks: the methods of {@code str} ({@code
 * startswith}, {@code split}, {@code lstrip}, ...) with Python's semantics, indexing a string, and
 * slices with a step ({@code x[::-1]}), with Python's rules for negative and out-of-range bounds.
 *
 * <p>Slices are rewritten before parsing: inside {@code {{ }}} and {@code {% %}} (outside string
 * literals), a subscript {@code [a:b:c]} becomes {@code [rme_slice(a, b, c)]} (an absent bound
 * becomes {@code none}); the {@link Resolver} then answers a subscript by a {@link Slice} as Python
 * does. Comments and {@code raw} blocks are left alone.
 */
final class JinjaPython {
  private JinjaPython() {}

  /** The EL function the rewritten slices call. */
  static final String SLICE_FUNCTION = "rme_slice";

  /** A Python slice; {@code null} bounds are absent. */
  record Slice(Integer start, Integer stop, Integer step) {
    Slice {
      if (step != null && step == 0) {
        throw new IllegalArgumentException("slice step cannot be zero");
      }
    }

    /** Python's {@code slice.indices(n)} then {@code range(...)}: the selected indices. */
    int[] indices(int n) {
      int st = step == null ? 1 : step;
      int lo;
      int hi;
      if (st > 0) {
        lo = start == null ? 0 : clamp(start, n, 0, n);
        hi = stop == null ? n : clamp(stop, n, 0, n);
      } else {
        lo = start == null ? n - 1 : clamp(start, n, -1, n - 1);
        hi = stop == null ? -1 : clamp(stop, n, -1, n - 1);
      }
      int count =
          st > 0 ? Math.max(0, (hi - lo + st - 1) / st) : Math.max(0, (lo - hi - st - 1) / -st);
      int[] out = new int[count];
      for (int k = 0; k < count; k++) {
        out[k] = lo + k * st;
      }
      return out;
    }

    private static final String KEY = "\u0000slice:";

    /**
     * Jinjava hands resolvers the subscript as a string: this one, which no template can write, is
     * read back by {@link #fromKey}.
     */
    @Override
    public String toString() {
      return KEY + start + ":" + stop + ":" + step;
    }

    static Slice fromKey(Object property) {
      if (property instanceof Slice s) {
        return s;
      }
      if (!(property instanceof String k) || !k.startsWith(KEY)) {
        return null;
      }
      String[] f = k.substring(KEY.length()).split(":", -1);
      return new Slice(intOrNull(f[0]), intOrNull(f[1]), intOrNull(f[2]));
    }

    private static Integer intOrNull(String s) {
      return s.equals("null") ? null : Integer.valueOf(s);
    }

    private static int clamp(int i, int n, int min, int max) {
      int j = i < 0 ? i + n : i;
      return Math.max(min, Math.min(max, j));
    }
  }

  /** {@code rme_slice(start, stop, step)}: called by rewritten templates. */
  public static Object slice(Object start, Object stop, Object step) {
    return new Slice(bound(start), bound(stop), bound(step));
  }

  private static Integer bound(Object o) {
    if (o == null) {
      return null;
    }
    if (o instanceof Number n) {
      return n.intValue();
    }
    throw new IllegalArgumentException("slice indices must be integers or None, got '" + o + "'");
  }

  // ---- the rewriting of slices ----

  /** The source with every slice subscript inside expressions and statements rewritten. */
  static String rewriteSlices(String s) {
    StringBuilder out = new StringBuilder(s.length() + 32);
    int i = 0;
    int n = s.length();
    while (i < n) {
      if (s.startsWith("{#", i)) {
        int e = s.indexOf("#}", i + 2);
        int end = e < 0 ? n : e + 2;
        out.append(s, i, end);
        i = end;
      } else if (s.startsWith("{{", i) || s.startsWith("{%", i)) {
        String close = s.startsWith("{{", i) ? "}}" : "%}";
        int end = tagEnd(s, i + 2, close);
        String inner = s.substring(i + 2, end);
        out.append(s, i, i + 2).append(rewriteExpression(inner));
        i = end;
        if (close.equals("%}") && inner.replaceAll("^[-+]?\\s*", "").matches("raw\\s*[-+]?")) {
          int r = indexOfEndRaw(s, i);
          out.append(s, i, r);
          i = r;
        }
      } else {
        out.append(s.charAt(i));
        i++;
      }
    }
    return out.toString();
  }

  private static int indexOfEndRaw(String s, int from) {
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("\\{%[-+]?\\s*endraw\\s*[-+]?%\\}").matcher(s);
    return m.find(from) ? m.start() : s.length();
  }

  /** Where a tag opened before {@code from} closes (the index of its closing delimiter). */
  private static int tagEnd(String s, int from, String close) {
    int depth = 0;
    int i = from;
    while (i < s.length()) {
      char c = s.charAt(i);
      if (c == '\'' || c == '"') {
        i = stringEnd(s, i);
        continue;
      }
      if (depth == 0 && s.startsWith(close, i)) {
        return i;
      }
      if (c == '(' || c == '[' || c == '{') {
        depth++;
      } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
        depth--;
      }
      i++;
    }
    return s.length();
  }

  /** The index just after the string literal starting at {@code i}. */
  private static int stringEnd(String s, int i) {
    char q = s.charAt(i);
    int j = i + 1;
    while (j < s.length() && s.charAt(j) != q) {
      j += s.charAt(j) == '\\' ? 2 : 1;
    }
    return Math.min(j + 1, s.length());
  }

  static String rewriteExpression(String e) {
    return notIs(rewriteBrackets(e));
  }

  private static final java.util.regex.Pattern WORD =
      java.util.regex.Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

  /**
   * Jinja2 reads {@code not x is defined} as {@code not (x is defined)}, Jinjava as {@code (not x)
   * is defined}: the test is parenthesized with its operand (the operand being a name or literal
   * with its attributes, subscripts, calls and filters).
   */
  static String notIs(String e) {
    StringBuilder out = new StringBuilder(e.length() + 8);
    int i = 0;
    String prevWord = "";
    while (i < e.length()) {
      char c = e.charAt(i);
      if (c == '\'' || c == '"') {
        int j = stringEnd(e, i);
        out.append(e, i, j);
        i = j;
        prevWord = "";
        continue;
      }
      java.util.regex.Matcher w = WORD.matcher(e).region(i, e.length());
      boolean wordStart =
          i == 0
              || !(Character.isLetterOrDigit(e.charAt(i - 1))
                  || e.charAt(i - 1) == '_'
                  || e.charAt(i - 1) == '.');
      if (wordStart && w.lookingAt()) {
        String word = w.group();
        if (word.equals("not") && !prevWord.equals("is")) {
          int opStart = skipSpace(e, w.end());
          int opEnd = operandEnd(e, opStart);
          int isAt = skipSpace(e, opEnd);
          java.util.regex.Matcher is = WORD.matcher(e).region(isAt, e.length());
          if (opEnd > opStart && is.lookingAt() && is.group().equals("is")) {
            int t = skipSpace(e, is.end());
            java.util.regex.Matcher tw = WORD.matcher(e).region(t, e.length());
            if (tw.lookingAt() && tw.group().equals("not")) {
              t = skipSpace(e, tw.end());
              tw = WORD.matcher(e).region(t, e.length());
            }
            if (tw.lookingAt()) {
              int end = tw.end();
              if (end < e.length() && e.charAt(end) == '(') {
                end = Math.min(e.length(), matching(e, end) + 1);
              }
              out.append("not (").append(notIs(e.substring(opStart, end))).append(')');
              i = end;
              prevWord = "";
              continue;
            }
          }
        }
        out.append(word);
        prevWord = word;
        i = w.end();
        continue;
      }
      if (!Character.isWhitespace(c)) {
        prevWord = "";
      }
      out.append(c);
      i++;
    }
    return out.toString();
  }

  private static int skipSpace(String e, int i) {
    while (i < e.length() && Character.isWhitespace(e.charAt(i))) {
      i++;
    }
    return i;
  }

  /** The end of a postfix operand: a name or literal, then .attr, [..], (..) and |filter(..). */
  private static int operandEnd(String e, int i) {
    if (i >= e.length()) {
      return i;
    }
    char c = e.charAt(i);
    if (c == '\'' || c == '"') {
      i = stringEnd(e, i);
    } else if (c == '(' || c == '[' || c == '{') {
      i = Math.min(e.length(), matching(e, i) + 1);
    } else {
      java.util.regex.Matcher m =
          java.util.regex.Pattern.compile("[A-Za-z0-9_]+").matcher(e).region(i, e.length());
      if (!m.lookingAt()) {
        return i;
      }
      i = m.end();
    }
    while (i < e.length()) {
      int j = skipSpace(e, i);
      if (j >= e.length()) {
        return i;
      }
      char d = e.charAt(j);
      if (d == '.' || d == '|') {
        java.util.regex.Matcher m = WORD.matcher(e).region(skipSpace(e, j + 1), e.length());
        if (!m.lookingAt()) {
          return i;
        }
        i = m.end();
      } else if (d == '[' || d == '(') {
        i = Math.min(e.length(), matching(e, j) + 1);
      } else {
        return i;
      }
    }
    return i;
  }

  static String rewriteBrackets(String e) {
    StringBuilder out = new StringBuilder(e.length());
    int i = 0;
    while (i < e.length()) {
      char c = e.charAt(i);
      if (c == '\'' || c == '"') {
        int j = stringEnd(e, i);
        out.append(e, i, j);
        i = j;
      } else if (c == '(') {
        int close = matching(e, i);
        out.append('(');
        List<String> args = topLevelSplit(e.substring(i + 1, close), ',');
        for (int k = 0; k < args.size(); k++) {
          java.util.regex.Matcher m = KEYWORD.matcher(args.get(k));
          out.append(k > 0 ? "," : "");
          if (m.lookingAt() && !args.get(k).substring(m.end()).isBlank()) {
            // Jinjava binds name=value tighter than operators: name=a - 1 is (name=a) - 1
            out.append(m.group())
                .append('(')
                .append(rewriteExpression(args.get(k).substring(m.end())));
            out.append(')');
          } else {
            out.append(rewriteExpression(args.get(k)));
          }
        }
        if (close < e.length()) {
          out.append(')');
        }
        i = close + 1;
      } else if (c == '[') {
        int close = matching(e, i);
        List<String> parts = topLevelSplit(e.substring(i + 1, close), ':');
        parts = parts.size() > 3 ? List.of(e.substring(i + 1, close)) : parts;
        if (parts.size() == 1) {
          out.append('[').append(rewriteExpression(parts.get(0)));
        } else {
          out.append('[').append(SLICE_FUNCTION).append('(');
          for (int k = 0; k < 3; k++) {
            String p = k < parts.size() ? parts.get(k).trim() : "";
            out.append(k > 0 ? ", " : "").append(p.isEmpty() ? "none" : rewriteExpression(p));
          }
          out.append(')');
        }
        if (close < e.length()) {
          out.append(']');
        }
        i = close + 1;
      } else {
        out.append(c);
        i++;
      }
    }
    return out.toString();
  }

  /** The index of the bracket closing the one at {@code open} (or the length if unclosed). */
  private static int matching(String e, int open) {
    int depth = 0;
    int i = open;
    while (i < e.length()) {
      char c = e.charAt(i);
      if (c == '\'' || c == '"') {
        i = stringEnd(e, i);
        continue;
      }
      if (c == '(' || c == '[' || c == '{') {
        depth++;
      } else if (c == ')' || c == ']' || c == '}') {
        depth--;
        if (depth == 0) {
          return i;
        }
      }
      i++;
    }
    return e.length();
  }

  /** A keyword argument's {@code name=} (not {@code ==}). */
  private static final java.util.regex.Pattern KEYWORD =
      java.util.regex.Pattern.compile("\\s*[A-Za-z_][A-Za-z0-9_]*\\s*=(?!=)");

  private static List<String> topLevelSplit(String inner, char sep) {
    List<String> parts = new ArrayList<>();
    int depth = 0;
    int start = 0;
    int i = 0;
    while (i < inner.length()) {
      char c = inner.charAt(i);
      if (c == '\'' || c == '"') {
        i = stringEnd(inner, i);
        continue;
      }
      if (c == '(' || c == '[' || c == '{') {
        depth++;
      } else if (c == ')' || c == ']' || c == '}') {
        depth--;
      } else if (c == sep && depth == 0) {
        parts.add(inner.substring(start, i));
        start = i + 1;
      }
      i++;
    }
    parts.add(inner.substring(start));
    return parts;
  }

  // ---- Python's str methods ----

  /** Python's {@code str.isspace()} for one char. */
  static boolean isSpace(char c) {
    return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
  }

  /**
   * {@code str.strip(chars)}, {@code lstrip}, {@code rstrip} ({@code chars == null}: whitespace).
   */
  static String strip(String s, String chars, boolean left, boolean right) {
    int b = 0;
    int e = s.length();
    while (left && b < e && strips(s.charAt(b), chars)) {
      b++;
    }
    while (right && e > b && strips(s.charAt(e - 1), chars)) {
      e--;
    }
    return s.substring(b, e);
  }

  private static boolean strips(char c, String chars) {
    return chars == null ? isSpace(c) : chars.indexOf(c) >= 0;
  }

  /** {@code str.split(sep=None, maxsplit=-1)}. */
  static List<String> split(String s, String sep, int maxsplit) {
    List<String> out = new ArrayList<>();
    if (sep == null) {
      int i = 0;
      int n = s.length();
      while (true) {
        while (i < n && isSpace(s.charAt(i))) {
          i++;
        }
        if (i == n) {
          return out;
        }
        if (maxsplit >= 0 && out.size() == maxsplit) {
          out.add(s.substring(i));
          return out;
        }
        int j = i;
        while (j < n && !isSpace(s.charAt(j))) {
          j++;
        }
        out.add(s.substring(i, j));
        i = j;
      }
    }
    if (sep.isEmpty()) {
      throw new IllegalArgumentException("empty separator");
    }
    int from = 0;
    int at;
    while ((maxsplit < 0 || out.size() < maxsplit) && (at = s.indexOf(sep, from)) >= 0) {
      out.add(s.substring(from, at));
      from = at + sep.length();
    }
    out.add(s.substring(from));
    return out;
  }

  /** {@code str.rsplit(sep=None, maxsplit=-1)}. */
  static List<String> rsplit(String s, String sep, int maxsplit) {
    if (maxsplit < 0) {
      return split(s, sep, maxsplit);
    }
    List<String> out = new ArrayList<>();
    if (sep == null) {
      int j = s.length();
      while (true) {
        while (j > 0 && isSpace(s.charAt(j - 1))) {
          j--;
        }
        if (j == 0) {
          break;
        }
        if (out.size() == maxsplit) {
          out.add(s.substring(0, j));
          break;
        }
        int i = j;
        while (i > 0 && !isSpace(s.charAt(i - 1))) {
          i--;
        }
        out.add(s.substring(i, j));
        j = i;
      }
    } else {
      if (sep.isEmpty()) {
        throw new IllegalArgumentException("empty separator");
      }
      int end = s.length();
      int at;
      while (out.size() < maxsplit && (at = s.lastIndexOf(sep, end - sep.length())) >= 0) {
        out.add(s.substring(at + sep.length(), end));
        end = at;
        if (end - sep.length() < 0) {
          break;
        }
      }
      out.add(s.substring(0, end));
    }
    java.util.Collections.reverse(out);
    return out;
  }

  /** {@code str.title()}: a cased char after an uncased one is upper-cased, others lower-cased. */
  static String title(String s) {
    StringBuilder sb = new StringBuilder(s.length());
    boolean prevCased = false;
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      boolean cased =
          Character.isUpperCase(cp) || Character.isLowerCase(cp) || Character.isTitleCase(cp);
      String ch = new String(Character.toChars(cp));
      sb.append(prevCased ? ch.toLowerCase(Locale.ROOT) : ch.toUpperCase(Locale.ROOT));
      prevCased = cased;
      i += Character.charCount(cp);
    }
    return sb.toString();
  }

  /** {@code str.capitalize()}: the first char upper-cased, the rest lower-cased. */
  static String capitalize(String s) {
    if (s.isEmpty()) {
      return s;
    }
    int cp = s.codePointAt(0);
    int k = Character.charCount(cp);
    return new String(Character.toChars(cp)).toUpperCase(Locale.ROOT)
        + s.substring(k).toLowerCase(Locale.ROOT);
  }

  /** {@code str.replace(old, new, count=-1)}. */
  static String replace(String s, String old, String rep, int count) {
    if (count < 0) {
      return s.replace(old, rep);
    }
    StringBuilder sb = new StringBuilder();
    int from = 0;
    int done = 0;
    if (old.isEmpty()) {
      for (int i = 0; i <= s.length(); i++) {
        if (done < count) {
          sb.append(rep);
          done++;
        }
        if (i < s.length()) {
          sb.append(s.charAt(i));
        }
      }
      return sb.toString();
    }
    int at;
    while (done < count && (at = s.indexOf(old, from)) >= 0) {
      sb.append(s, from, at).append(rep);
      from = at + old.length();
      done++;
    }
    return sb.append(s.substring(from)).toString();
  }

  /** {@code str.count(sub)}: non-overlapping occurrences ({@code len + 1} for {@code ""}). */
  static int count(String s, String sub) {
    if (sub.isEmpty()) {
      return s.length() + 1;
    }
    int c = 0;
    int at = s.indexOf(sub);
    while (at >= 0) {
      c++;
      at = s.indexOf(sub, at + sub.length());
    }
    return c;
  }

  /** {@code str.splitlines()} (line boundaries as Python's, ends dropped). */
  static List<String> splitlines(String s) {
    List<String> out = new ArrayList<>();
    int start = 0;
    int i = 0;
    while (i < s.length()) {
      char c = s.charAt(i);
      if ("\n\r\u000b\u000c\u001c\u001d\u001e\u0085\u2028\u2029".indexOf(c) >= 0) {
        out.add(s.substring(start, i));
        i += c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n' ? 2 : 1;
        start = i;
      } else {
        i++;
      }
    }
    if (start < s.length()) {
      out.add(s.substring(start));
    }
    return out;
  }

  private static boolean affix(String s, Object arg, Object[] p, boolean prefix) {
    int n = s.length();
    int b = p.length > 1 && p[1] != null ? clampEnd(toInt(p[1]), n) : 0;
    int e = p.length > 2 && p[2] != null ? clampEnd(toInt(p[2]), n) : n;
    if (b > e) {
      return false;
    }
    String sub = s.substring(b, e);
    if (arg instanceof Collection<?> c) {
      for (Object o : c) {
        if (prefix ? sub.startsWith(str(o)) : sub.endsWith(str(o))) {
          return true;
        }
      }
      return false;
    }
    return prefix ? sub.startsWith(str(arg)) : sub.endsWith(str(arg));
  }

  private static int clampEnd(int e, int n) {
    int j = e < 0 ? e + n : e;
    return Math.max(0, Math.min(n, j));
  }

  private static boolean all(String s, java.util.function.IntPredicate p) {
    return !s.isEmpty() && s.codePoints().allMatch(p);
  }

  private static boolean cased(String s, boolean upper) {
    boolean any = false;
    for (int cp : s.codePoints().toArray()) {
      if (upper
          ? Character.isLowerCase(cp)
          : Character.isUpperCase(cp) || Character.isTitleCase(cp)) {
        return false;
      }
      any |= upper ? Character.isUpperCase(cp) : Character.isLowerCase(cp);
    }
    return any;
  }

  private static String str(Object o) {
    if (o == null) {
      return "None";
    }
    if (o instanceof Boolean b) {
      return b ? "True" : "False";
    }
    return o.toString();
  }

  private static int toInt(Object o) {
    if (o instanceof Number n) {
      return n.intValue();
    }
    throw new IllegalArgumentException("an integer was expected, got '" + o + "'");
  }

  private static String optString(Object[] p, int i) {
    return p.length > i && p[i] != null ? str(p[i]) : null;
  }

  private static int optInt(Object[] p, int i, int dflt) {
    return p.length > i && p[i] != null ? toInt(p[i]) : dflt;
  }

  /** A marker for "no such Python method": the other resolvers get their turn. */
  private static final Object NONE = new Object();

  /** Calls the Python {@code str} method {@code name} on {@code s}, or {@link #NONE}. */
  static Object strMethod(String s, String name, Object[] p) {
    return switch (name) {
      case "startswith" -> affix(s, p[0], p, true);
      case "endswith" -> affix(s, p[0], p, false);
      case "strip" -> strip(s, optString(p, 0), true, true);
      case "lstrip" -> strip(s, optString(p, 0), true, false);
      case "rstrip" -> strip(s, optString(p, 0), false, true);
      case "split" -> pyList(split(s, optString(p, 0), optInt(p, 1, -1)));
      case "rsplit" -> pyList(rsplit(s, optString(p, 0), optInt(p, 1, -1)));
      case "splitlines" -> pyList(splitlines(s));
      case "upper" -> s.toUpperCase(Locale.ROOT);
      case "lower" -> s.toLowerCase(Locale.ROOT);
      case "title" -> title(s);
      case "capitalize" -> capitalize(s);
      case "replace" -> replace(s, str(p[0]), str(p[1]), optInt(p, 2, -1));
      case "find" -> findIn(s, str(p[0]), p, false);
      case "rfind" -> findIn(s, str(p[0]), p, true);
      case "count" -> count(s, str(p[0]));
      case "join" -> join(s, p[0]);
      case "removeprefix" -> s.startsWith(str(p[0])) ? s.substring(str(p[0]).length()) : s;
      case "removesuffix" ->
          s.endsWith(str(p[0])) && !str(p[0]).isEmpty()
              ? s.substring(0, s.length() - str(p[0]).length())
              : s;
      case "isspace" -> all(s, cp -> cp < 0x10000 && isSpace((char) cp));
      case "isdigit" -> all(s, Character::isDigit);
      case "isalpha" -> all(s, Character::isLetter);
      case "isalnum" -> all(s, Character::isLetterOrDigit);
      case "isupper" -> cased(s, true);
      case "islower" -> cased(s, false);
      default -> NONE;
    };
  }

  private static PyList pyList(List<String> l) {
    return new PyList(new ArrayList<Object>(l));
  }

  private static int findIn(String s, String sub, Object[] p, boolean last) {
    int n = s.length();
    int b = p.length > 1 && p[1] != null ? clampEnd(toInt(p[1]), n) : 0;
    int e = p.length > 2 && p[2] != null ? clampEnd(toInt(p[2]), n) : n;
    if (b > e) {
      return -1;
    }
    String w = s.substring(b, e);
    int at = last ? w.lastIndexOf(sub) : w.indexOf(sub);
    return at < 0 ? -1 : at + b;
  }

  private static String join(String sep, Object items) {
    StringBuilder sb = new StringBuilder();
    Iterator<?> it = iterate(items);
    boolean first = true;
    while (it.hasNext()) {
      Object o = it.next();
      if (!(o instanceof CharSequence)) {
        throw new IllegalArgumentException(
            "sequence item: expected str instance, "
                + (o == null ? "NoneType" : o.getClass().getSimpleName())
                + " found");
      }
      sb.append(first ? "" : sep).append(o);
      first = false;
    }
    return sb.toString();
  }

  private static Iterator<?> iterate(Object o) {
    if (o instanceof Iterable<?> i) {
      return i.iterator();
    }
    if (o instanceof Map<?, ?> m) {
      return m.keySet().iterator();
    }
    if (o instanceof CharSequence cs) {
      return cs.chars().mapToObj(c -> String.valueOf((char) c)).iterator();
    }
    if (o != null && o.getClass().isArray()) {
      List<Object> l = new ArrayList<>();
      for (int i = 0; i < Array.getLength(o); i++) {
        l.add(Array.get(o, i));
      }
      return l.iterator();
    }
    throw new IllegalArgumentException("can only join an iterable");
  }

  /** Python's {@code x[slice]} for a string, list or array. */
  static Object applySlice(Object base, Slice sl) {
    if (base instanceof CharSequence cs) {
      String s = cs.toString();
      int[] ix = sl.indices(s.length());
      StringBuilder sb = new StringBuilder(ix.length);
      for (int i : ix) {
        sb.append(s.charAt(i));
      }
      return sb.toString();
    }
    List<Object> items = new ArrayList<>();
    iterate(base).forEachRemaining(items::add);
    List<Object> out = new ArrayList<>();
    for (int i : sl.indices(items.size())) {
      out.add(items.get(i));
    }
    return new PyList(out);
  }

  private static String text(Object base) {
    if (base instanceof String s) {
      return s;
    }
    if (base instanceof SafeString s) {
      return s.toString();
    }
    return null;
  }

  /** A subscript that is an integer (Jinjava passes subscripts as strings). */
  private static Integer integer(Object property) {
    if (property instanceof Integer || property instanceof Long) {
      return ((Number) property).intValue();
    }
    if (property instanceof String k && k.matches("-?[0-9]{1,9}")) {
      return Integer.valueOf(k);
    }
    return null;
  }

  /** Answers, before Jinjava's own resolvers, Python's str methods, string indexing and slicing. */
  static final class Resolver extends ELResolver {
    @Override
    public Object getValue(ELContext context, Object base, Object property) {
      if (base == null) {
        return null;
      }
      Slice sl = Slice.fromKey(property);
      if (sl != null
          && (base instanceof CharSequence
              || base instanceof Collection<?>
              || base instanceof SafeString
              || base.getClass().isArray())) {
        context.setPropertyResolved(true);
        return applySlice(base instanceof SafeString ss ? ss.toString() : base, sl);
      }
      String s = text(base);
      Integer index = integer(property);
      if (s != null && index != null) {
        int i = index;
        int j = i < 0 ? i + s.length() : i;
        context.setPropertyResolved(true);
        return j >= 0 && j < s.length() ? String.valueOf(s.charAt(j)) : null;
      }
      return null;
    }

    @Override
    public Object invoke(
        ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
      String s = text(base);
      if (s == null || !(method instanceof String name)) {
        return null;
      }
      Object[] p = params == null ? new Object[0] : params;
      Object r;
      try {
        r = strMethod(s, name, p);
      } catch (ArrayIndexOutOfBoundsException e) {
        throw new IllegalArgumentException(
            "str." + name + "() takes at least " + (p.length + 1) + " argument(s)");
      }
      if (r == NONE) {
        return null;
      }
      context.setPropertyResolved(true);
      return r;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
      return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {}

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
      return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
      return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
      return null;
    }
  }
}
