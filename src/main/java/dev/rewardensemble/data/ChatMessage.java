package dev.rewardensemble.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One message of a conversation, as a chat template reads it: {@code role}, {@code content} and any
 * other fields the row gave (e.g. {@code name}, {@code tool_calls}), which templates may inspect.
 *
 * @param fields every field of the message, {@code role} and {@code content} included, in row order
 */
public record ChatMessage(Map<String, Object> fields) {
  private static final ObjectMapper JSON = new ObjectMapper();

  public ChatMessage {
    fields = Collections.unmodifiableMap(new LinkedHashMap<>(fields));
    if (!(fields.get("role") instanceof String)) {
      throw new IllegalArgumentException("a message needs a string \"role\"");
    }
    if (!(fields.get("content") instanceof String)) {
      throw new IllegalArgumentException("a message needs a string \"content\"");
    }
  }

  /** A message with just a role and a content. */
  public static ChatMessage of(String role, String content) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("role", Objects.requireNonNull(role, "role"));
    m.put("content", Objects.requireNonNull(content, "content"));
    return new ChatMessage(m);
  }

  public String role() {
    return (String) fields.get("role");
  }

  public String content() {
    return (String) fields.get("content");
  }

  /** Whether a JSON value looks like a conversation: an array whose elements are objects. */
  static boolean isConversation(JsonNode n) {
    return n != null && n.isArray() && n.size() > 0 && n.get(0).isObject();
  }

  /**
   * The messages of a JSON array {@code [{"role": .., "content": ..}, ..]}.
   *
   * @throws BadRowException naming {@code field} and the message index when it is not such a list
   */
  @SuppressWarnings("unchecked")
  static List<ChatMessage> list(JsonNode n, String field) {
    if (n == null || n.isNull()) {
      throw new BadRowException(field, RowFields.MISSING, "missing");
    }
    if (!n.isArray()) {
      throw new BadRowException(
          field, RowFields.WRONG_TYPE, "expected a list of messages, got " + RowFields.kind(n));
    }
    if (n.isEmpty()) {
      throw new BadRowException(field, RowFields.EMPTY_TEXT, "empty list of messages");
    }
    List<ChatMessage> out = new ArrayList<>(n.size());
    for (int i = 0; i < n.size(); i++) {
      JsonNode m = n.get(i);
      String where = "message " + i;
      if (!m.isObject()) {
        throw new BadRowException(
            field, RowFields.WRONG_TYPE, where + " is " + RowFields.kind(m) + ", not an object");
      }
      JsonNode role = m.get("role");
      if (role == null || !role.isTextual() || role.textValue().isEmpty()) {
        throw new BadRowException(
            field, RowFields.WRONG_TYPE, where + ": \"role\" must be a non-empty string");
      }
      JsonNode content = m.get("content");
      if (content == null || !content.isTextual()) {
        throw new BadRowException(
            field,
            RowFields.WRONG_TYPE,
            where
                + ": \"content\" must be a string, got "
                + (content == null ? "none" : RowFields.kind(content))
                + " (multimodal content lists are not supported)");
      }
      out.add(new ChatMessage(JSON.convertValue(m, LinkedHashMap.class)));
    }
    return List.copyOf(out);
  }
}
