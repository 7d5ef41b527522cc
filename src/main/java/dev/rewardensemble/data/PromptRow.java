package dev.rewardensemble.data;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One row of {@code rme generate} input, encoded.
 *
 * @param line 1-based line of the row in its file
 * @param ids the prompt's token ids (after the encoder's template and truncation)
 * @param text the prompt text as given, or {@code null} for a pre-tokenized row
 * @param original the row as read, with every field (so an {@code id} field can be echoed)
 */
public record PromptRow(int line, int[] ids, String text, ObjectNode original) {}
