package dev.rewardensemble.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.objects.date.StrftimeFormatter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import jinjava.javax.el.CompositeELResolver;

/**
 * A checkpoint's chat template, rendered as transformers' {@code apply_chat_template} renders it.
 *
 * <p>The template is the {@code chat_template} of {@code tokenizer_config.json} (a string, or a
 * list of {@code {"name", "template"}} of which the one named {@code default} is used), or the file
 * {@code chat_template.jinja} beside it, which wins when both exist (as in transformers). It is
 * rendered with <a href="https://github.com/HubSpot/jinjava">Jinjava</a> set up like transformers'
 * Jinja2 environment: {@code trim_blocks} and {@code lstrip_blocks} on, no trailing newline kept,
 * filters binding tighter than operators. The template sees {@code messages}, {@code
 * add_generation_prompt}, the special tokens of {@code tokenizer_config.json} (or {@code
 * special_tokens_map.json}) as strings ({@code bos_token}, {@code eos_token}, {@code pad_token},
 * ...; AddedToken objects by their {@code content}), the functions {@code raise_exception(msg)} and
 * {@code strftime_now(format)}, and any extra variables given to {@link #render(List, boolean,
 * Map)}; {@code tools} and {@code documents} are left undefined.
 *
 * <p>Where Jinjava differs from Python's Jinja2, this class bridges it: the source's line endings
 * are normalised and one trailing newline dropped (Jinja2's lexer does both); {@code trim} strips
 * Python's whitespace set (which includes U+00A0, U+2007, U+202F and U+0085, unlike Java's); {@code
 * tojson} writes what Python's {@code json.dumps(x, ensure_ascii=False)} writes (transformers'
 * override: {@code ", "} and {@code ": "} separators, {@code indent}, {@code sort_keys}); {@code
 * raise_exception} stops the rendering with the template's message instead of being logged and
 * skipped; {@code raise_exception} and {@code strftime_now} are {@code defined}; message content is
 * never rendered as a template itself. Python's {@code str} methods ({@code startswith}, {@code
 * split}, {@code lstrip(chars)}, ...), string indexing, slices with a step ({@code messages[::-1]})
 * and Jinja2's precedences of {@code not x is test} and {@code f(k=a - 1)} come from {@link
 * JinjaPython}.
 *
 * <p>{@link #encode} tokenizes the rendered text as {@code apply_chat_template(tokenize=True)}
 * does: the whole text at once, with no special tokens added (the template writes its own BOS);
 * special tokens written by the template, like {@code <|im_start|>}, map to their ids.
 *
 * <p>Instances are immutable and thread-safe.
 */
public final class ChatTemplate {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The special-token keys of transformers' {@code special_tokens_map}. */
  private static final List<String> SPECIAL_KEYS =
      List.of(
          "bos_token",
          "eos_token",
          "unk_token",
          "sep_token",
          "pad_token",
          "cls_token",
          "mask_token");

  private static final ThreadLocal<String> RAISED = new ThreadLocal<>();

  private final String source;
  private final String origin;
  private final Map<String, Object> specialTokens;
  private final String prepared;
  private final Jinjava jinjava;

  private ChatTemplate(String source, String origin, Map<String, Object> specialTokens) {
    this.source = Objects.requireNonNull(source, "source");
    this.origin = Objects.requireNonNull(origin, "origin");
    this.specialTokens = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(specialTokens));
    this.prepared = JinjaPython.rewriteSlices(jinja2Source(source));
    this.jinjava = newJinjava();
  }

  /**
   * A template from its source text.
   *
   * @param specialTokens variables such as {@code bos_token} (strings, or a list of strings for
   *     {@code additional_special_tokens})
   * @param origin where it came from, for messages (e.g. the file)
   */
  public static ChatTemplate of(String source, Map<String, ?> specialTokens, String origin) {
    return new ChatTemplate(source, origin, new LinkedHashMap<>(specialTokens));
  }

  /**
   * The chat template stored with a tokenizer, if any.
   *
   * @param tokenizer a {@code tokenizer.json} file or the directory holding it: the template is
   *     looked for in {@code chat_template.jinja} and {@code tokenizer_config.json} beside it
   * @throws IllegalArgumentException if those files exist but are unreadable or malformed
   */
  public static Optional<ChatTemplate> find(Path tokenizer) {
    Path dir = Files.isDirectory(tokenizer) ? tokenizer : tokenizer.toAbsolutePath().getParent();
    if (dir == null) {
      return Optional.empty();
    }
    Path jinjaFile = dir.resolve("chat_template.jinja");
    Path configFile = dir.resolve("tokenizer_config.json");
    JsonNode config = Files.isRegularFile(configFile) ? readJson(configFile) : null;
    String source;
    String origin;
    if (Files.isRegularFile(jinjaFile)) {
      try {
        source = Files.readString(jinjaFile);
      } catch (IOException e) {
        throw new IllegalArgumentException(
            "cannot read chat template " + jinjaFile + ": " + e.getMessage(), e);
      }
      origin = jinjaFile.toString();
    } else if (config != null && config.hasNonNull("chat_template")) {
      source = fromConfig(config.get("chat_template"), configFile);
      origin = configFile + " (chat_template)";
    } else {
      return Optional.empty();
    }
    return Optional.of(new ChatTemplate(source, origin, specialTokens(dir, config)));
  }

  /**
   * The special tokens stored with a tokenizer as strings ({@code bos_token}, {@code eos_token},
   * {@code pad_token}, ...; AddedToken objects by their {@code content}): {@code
   * special_tokens_map.json} overridden by {@code tokenizer_config.json}, as transformers reads
   * them; empty when neither file exists.
   *
   * @param tokenizer a {@code tokenizer.json} file or the directory holding it
   * @throws IllegalArgumentException if those files exist but are unreadable or malformed
   */
  public static Map<String, Object> specialTokens(Path tokenizer) {
    Path dir = Files.isDirectory(tokenizer) ? tokenizer : tokenizer.toAbsolutePath().getParent();
    if (dir == null) {
      return Map.of();
    }
    Path configFile = dir.resolve("tokenizer_config.json");
    JsonNode config = Files.isRegularFile(configFile) ? readJson(configFile) : null;
    return java.util.Collections.unmodifiableMap(specialTokens(dir, config));
  }

  private static Map<String, Object> specialTokens(Path dir, JsonNode config) {
    Map<String, Object> special = new LinkedHashMap<>();
    Path mapFile = dir.resolve("special_tokens_map.json");
    if (Files.isRegularFile(mapFile)) {
      readSpecialTokens(readJson(mapFile), mapFile, special);
    }
    if (config != null) {
      // tokenizer_config.json wins
      readSpecialTokens(config, dir.resolve("tokenizer_config.json"), special);
    }
    return special;
  }

  /**
   * The files beside a {@code tokenizer.json} that carry its chat template and special tokens;
   * whatever copies a tokenizer copies them too ({@link #copyTokenizerFiles}).
   */
  public static final List<String> TOKENIZER_FILES =
      List.of("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja");

  /**
   * Copies a {@code tokenizer.json} into {@code dir} with the {@link #TOKENIZER_FILES} that exist
   * beside it, each through a temporary file renamed in place, so a kill mid-copy never leaves a
   * torn file; existing files of those names in {@code dir} are replaced.
   */
  public static void copyTokenizerFiles(Path tokenizerJson, Path dir) throws IOException {
    copyAtomically(tokenizerJson, dir.resolve("tokenizer.json"));
    Path from = tokenizerJson.toAbsolutePath().getParent();
    for (String name : TOKENIZER_FILES) {
      Path src = from == null ? null : from.resolve(name);
      if (src != null && Files.isRegularFile(src)) {
        copyAtomically(src, dir.resolve(name));
      }
    }
  }

  private static void copyAtomically(Path src, Path dest) throws IOException {
    Path tmp = dest.resolveSibling("." + dest.getFileName() + ".tmp");
    Files.copy(src, tmp, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    Files.move(
        tmp,
        dest,
        java.nio.file.StandardCopyOption.REPLACE_EXISTING,
        java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }

  private static String fromConfig(JsonNode t, Path file) {
    if (t.isTextual()) {
      return t.textValue();
    }
    if (t.isArray()) {
      List<String> names = new ArrayList<>();
      for (JsonNode e : t) {
        String name = e.path("name").asText(null);
        names.add(name);
        if ("default".equals(name)) {
          if (!e.path("template").isTextual()) {
            throw new IllegalArgumentException(
                file + ": chat_template: the template named \"default\" is not a string");
          }
          return e.get("template").textValue();
        }
      }
      throw new IllegalArgumentException(
          file + ": chat_template: several templates " + names + " and none named \"default\"");
    }
    throw new IllegalArgumentException(
        file + ": chat_template: expected a string or a list of {name, template}, got " + t);
  }

  private static JsonNode readJson(Path file) {
    try {
      return JSON.readTree(file.toFile());
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(
          "invalid JSON in "
              + file
              + " at line "
              + e.getLocation().getLineNr()
              + ": "
              + e.getOriginalMessage(),
          e);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  private static void readSpecialTokens(JsonNode root, Path file, Map<String, Object> out) {
    if (!root.isObject()) {
      throw new IllegalArgumentException(file + ": expected a JSON object");
    }
    for (String key : SPECIAL_KEYS) {
      String v = tokenText(root.get(key));
      if (v != null) {
        out.put(key, v);
      }
    }
    JsonNode extra = root.get("additional_special_tokens");
    if (extra != null && extra.isArray()) {
      List<String> list = new ArrayList<>();
      for (JsonNode e : extra) {
        String v = tokenText(e);
        if (v != null) {
          list.add(v);
        }
      }
      out.put("additional_special_tokens", List.copyOf(list));
    }
  }

  /** A special token as a string: stored as one, or as an AddedToken object's content. */
  private static String tokenText(JsonNode n) {
    if (n == null || n.isNull()) {
      return null;
    }
    if (n.isTextual()) {
      return n.textValue();
    }
    if (n.isObject() && n.path("content").isTextual()) {
      return n.get("content").textValue();
    }
    return null;
  }

  /** The template text as stored. */
  public String source() {
    return source;
  }

  /** Where the template came from (its file), for messages. */
  public String origin() {
    return origin;
  }

  /** The special tokens given to the template as variables. */
  public Map<String, Object> specialTokens() {
    return specialTokens;
  }

  /** Renders a conversation; see {@link #render(List, boolean, Map)}. */
  public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
    return render(messages, addGenerationPrompt, Map.of());
  }

  /**
   * Renders a conversation to text.
   *
   * @param addGenerationPrompt whether the template should end with the start of an assistant turn
   * @param variables extra template variables (e.g. {@code date_string}); they override the special
   *     tokens of the same name
   * @throws ChatTemplateException if the template raises or fails
   */
  public String render(
      List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, ?> variables) {
    Map<String, Object> vars = new LinkedHashMap<>(specialTokens);
    // Jinjava's functions are not variables: these make "strftime_now is defined" true, as in
    // Jinja2 (Llama 3.2 tests it), while calls still reach the functions
    vars.put("raise_exception", "<function raise_exception>");
    vars.put("strftime_now", "<function strftime_now>");
    vars.putAll(variables);
    List<Map<String, Object>> msgs = new ArrayList<>(messages.size());
    for (ChatMessage m : messages) {
      msgs.add(new LinkedHashMap<>(m.fields()));
    }
    vars.put("messages", msgs);
    vars.put("add_generation_prompt", addGenerationPrompt);
    RAISED.remove();
    RenderResult r;
    try {
      r = jinjava.renderForResult(prepared, vars);
    } finally {
      String raised = RAISED.get();
      RAISED.remove();
      if (raised != null) {
        throw new ChatTemplateException("chat template " + origin + " raised: " + raised, raised);
      }
    }
    for (TemplateError e : r.getErrors()) {
      if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
        String msg =
            e.getMessage() + (e.getLineno() > 0 ? " (template line " + e.getLineno() + ")" : "");
        throw new ChatTemplateException("chat template " + origin + " failed: " + msg, msg);
      }
    }
    return r.getOutput();
  }

  /**
   * The token ids of a rendered conversation, as {@code apply_chat_template(tokenize=True)} gives
   * them: the whole text tokenized at once, no special tokens added.
   */
  public int[] encode(
      Tokenizer tokenizer, List<ChatMessage> messages, boolean addGenerationPrompt) {
    return tokenizer.encode(render(messages, addGenerationPrompt));
  }

  @Override
  public String toString() {
    return "ChatTemplate[" + origin + "]";
  }

  // ---- the Jinja2 environment of transformers, in Jinjava ----

  /**
   * The source as Jinja2's lexer sees it: {@code \r\n} and {@code \r} become {@code \n}, and one
   * trailing newline is dropped ({@code keep_trailing_newline=False}).
   */
  static String jinja2Source(String s) {
    String t = s.replace("\r\n", "\n").replace('\r', '\n');
    return t.endsWith("\n") ? t.substring(0, t.length() - 1) : t;
  }

  /** Python's str methods, string indexing and slices first, then Jinjava's resolvers. */
  private static final CompositeELResolver PY_RESOLVER = new CompositeELResolver();

  static {
    PY_RESOLVER.add(new JinjaPython.Resolver());
    PY_RESOLVER.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
  }

  private static Jinjava newJinjava() {
    JinjavaConfig config =
        JinjavaConfig.newBuilder()
            .withTrimBlocks(true)
            .withLstripBlocks(true)
            .withNestedInterpretationEnabled(false)
            .withFailOnUnknownTokens(false)
            .withElResolver(PY_RESOLVER)
            .withLegacyOverrides(
                LegacyOverrides.newBuilder()
                    .withUseNaturalOperatorPrecedence(true)
                    .withParseWhitespaceControlStrictly(true)
                    .withUseTrimmingForNotesAndExpressions(true)
                    .withKeepNullableLoopValues(true)
                    .withEvaluateMapKeys(true)
                    .withIterateOverMapKeys(true)
                    .build())
            .build();
    Jinjava j = new Jinjava(config);
    var ctx = j.getGlobalContext();
    ctx.registerFunction(
        new ELFunctionDefinition(
            "", "raise_exception", ChatTemplate.class, "raiseException", String.class));
    ctx.registerFunction(
        new ELFunctionDefinition(
            "", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
    ctx.registerFunction(
        new ELFunctionDefinition(
            "",
            JinjaPython.SLICE_FUNCTION,
            JinjaPython.class,
            "slice",
            Object.class,
            Object.class,
            Object.class));
    ctx.registerFilter(new PyTojson());
    ctx.registerFilter(new PyTrim());
    return j;
  }

  /** {@code raise_exception(message)}: remembered, then rendering stops with it. */
  public static String raiseException(String message) {
    if (RAISED.get() == null) {
      RAISED.set(String.valueOf(message));
    }
    throw new IllegalStateException(String.valueOf(message));
  }

  /** {@code strftime_now(format)}: the local time formatted with Python's strftime codes. */
  public static String strftimeNow(String format) {
    return StrftimeFormatter.format(ZonedDateTime.now(), format, Locale.ENGLISH);
  }

  /** Python's {@code str.isspace()} for one char. */
  static boolean isPythonSpace(char c) {
    return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
  }

  /** Python's {@code str.strip(chars)} ({@code chars == null}: whitespace). */
  static String pythonStrip(String s, String chars) {
    int b = 0;
    int e = s.length();
    while (b < e && strips(s.charAt(b), chars)) {
      b++;
    }
    while (e > b && strips(s.charAt(e - 1), chars)) {
      e--;
    }
    return s.substring(b, e);
  }

  private static boolean strips(char c, String chars) {
    return chars == null ? isPythonSpace(c) : chars.indexOf(c) >= 0;
  }

  /** Jinja2's {@code trim(value, chars=None)}: Python's {@code str.strip}. */
  private static final class PyTrim implements AdvancedFilter {
    @Override
    public String getName() {
      return "trim";
    }

    @Override
    public Object filter(
        Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
      if (var == null) {
        return null;
      }
      Object chars = args.length > 0 ? args[0] : kwargs.get("chars");
      return pythonStrip(var.toString(), chars == null ? null : chars.toString());
    }
  }

  /**
   * transformers' {@code tojson}: {@code json.dumps(x, ensure_ascii=False, indent=indent,
   * separators=separators, sort_keys=sort_keys)}.
   */
  private static final class PyTojson implements AdvancedFilter {
    @Override
    public String getName() {
      return "tojson";
    }

    @Override
    public Object filter(
        Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
      Object indentArg = kwargs.containsKey("indent") ? kwargs.get("indent") : at(args, 1);
      Integer indent = indentArg == null ? null : ((Number) toNumber(indentArg)).intValue();
      boolean sortKeys = truthy(kwargs.containsKey("sort_keys") ? kwargs.get("sort_keys") : null);
      String item = indent == null ? ", " : ",";
      String key = ": ";
      Object seps = kwargs.get("separators");
      if (seps instanceof List<?> l && l.size() == 2) {
        item = String.valueOf(l.get(0));
        key = String.valueOf(l.get(1));
      }
      StringBuilder sb = new StringBuilder();
      new PyJson(indent, item, key, sortKeys).write(sb, var, 0);
      return sb.toString();
    }

    private static Object at(Object[] args, int i) {
      // ensure_ascii, indent, separators, sort_keys are keyword-only in practice; a positional
      // first argument is indent as in Jinja2's own tojson(indent)
      return args.length > 0 ? args[0] : null;
    }

    private static Object toNumber(Object o) {
      return o instanceof Number ? o : Long.parseLong(o.toString().trim());
    }

    private static boolean truthy(Object o) {
      return o instanceof Boolean b ? b : o != null && !"false".equalsIgnoreCase(o.toString());
    }
  }

  /** Python's {@code json.dumps} with {@code ensure_ascii=False}. */
  record PyJson(Integer indent, String itemSep, String keySep, boolean sortKeys) {
    void write(StringBuilder sb, Object v, int depth) {
      if (v == null) {
        sb.append("null");
      } else if (v instanceof Boolean b) {
        sb.append(b ? "true" : "false");
      } else if (v instanceof Double || v instanceof Float) {
        double d = ((Number) v).doubleValue();
        sb.append(pyFloat(d));
      } else if (v instanceof Number n) {
        sb.append(n.toString());
      } else if (v instanceof Map<?, ?> m) {
        Map<?, ?> map = m;
        if (sortKeys) {
          Map<String, Object> sorted = new TreeMap<>();
          m.forEach((k, x) -> sorted.put(String.valueOf(k), x));
          map = sorted;
        }
        if (map.isEmpty()) {
          sb.append("{}");
          return;
        }
        sb.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> e : map.entrySet()) {
          if (!first) {
            sb.append(itemSep);
          }
          first = false;
          newline(sb, depth + 1);
          string(sb, String.valueOf(e.getKey()));
          sb.append(keySep);
          write(sb, e.getValue(), depth + 1);
        }
        newline(sb, depth);
        sb.append('}');
      } else if (v instanceof Collection<?> || v instanceof Object[]) {
        Iterator<?> it =
            v instanceof Collection<?> c ? c.iterator() : List.of((Object[]) v).iterator();
        if (!it.hasNext()) {
          sb.append("[]");
          return;
        }
        sb.append('[');
        boolean first = true;
        while (it.hasNext()) {
          if (!first) {
            sb.append(itemSep);
          }
          first = false;
          newline(sb, depth + 1);
          write(sb, it.next(), depth + 1);
        }
        newline(sb, depth);
        sb.append(']');
      } else {
        string(sb, v.toString());
      }
    }

    private void newline(StringBuilder sb, int depth) {
      if (indent != null) {
        sb.append('\n').append(" ".repeat(indent * depth));
      }
    }

    static String pyFloat(double d) {
      if (Double.isNaN(d)) {
        return "NaN";
      }
      if (Double.isInfinite(d)) {
        return d > 0 ? "Infinity" : "-Infinity";
      }
      if (d == Math.rint(d) && Math.abs(d) < 1e16) {
        return String.valueOf((long) d) + ".0";
      }
      String s = Double.toString(d);
      int e = s.indexOf('E');
      if (e < 0) {
        return s;
      }
      // Java 1.0E-5 -> Python 1e-05
      String mant = s.substring(0, e);
      if (mant.endsWith(".0")) {
        mant = mant.substring(0, mant.length() - 2);
      }
      int exp = Integer.parseInt(s.substring(e + 1));
      if (exp >= -4 && exp < 16) {
        return new java.math.BigDecimal(s).toPlainString(); // Python's repr has no exponent here
      }
      return mant + "e" + (exp < 0 ? "-" : "+") + String.format("%02d", Math.abs(exp));
    }

    static void string(StringBuilder sb, String s) {
      sb.append('"');
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        switch (c) {
          case '"' -> sb.append("\\\"");
          case '\\' -> sb.append("\\\\");
          case '\n' -> sb.append("\\n");
          case '\r' -> sb.append("\\r");
          case '\t' -> sb.append("\\t");
          case '\b' -> sb.append("\\b");
          case '\f' -> sb.append("\\f");
          default -> {
            if (c < 0x20) {
              sb.append(String.format("\\u%04x", (int) c));
            } else {
              sb.append(c);
            }
          }
        }
      }
      sb.append('"');
    }
  }
}
