package dev.rewardensemble.data;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One row of {@code rme score} input, encoded.
 *
 * @param line 1-based line of the row in its file
 * @param ids the token ids to score (after the encoder's truncation policy)
 * @param original the row as read, with every field (so an {@code id} field can be echoed)
 */
public record ScoreRow(int line, int[] ids, ObjectNode original) {}
