package dev.rewardensemble.eval;

import java.util.List;
import java.util.Map;

/** The world's fixed facts: a capital table and a word list, both small enough to read here. */
final class Facts {
  private Facts() {}

  /** Country to capital, 24 entries. */
  static final Map<String, String> CAPITALS =
      Map.ofEntries(
          Map.entry("France", "Paris"),
          Map.entry("Spain", "Madrid"),
          Map.entry("Italy", "Rome"),
          Map.entry("Germany", "Berlin"),
          Map.entry("Japan", "Tokyo"),
          Map.entry("Egypt", "Cairo"),
          Map.entry("Peru", "Lima"),
          Map.entry("Kenya", "Nairobi"),
          Map.entry("Norway", "Oslo"),
          Map.entry("Cuba", "Havana"),
          Map.entry("Chile", "Santiago"),
          Map.entry("Greece", "Athens"),
          Map.entry("Ireland", "Dublin"),
          Map.entry("Poland", "Warsaw"),
          Map.entry("Austria", "Vienna"),
          Map.entry("Russia", "Moscow"),
          Map.entry("China", "Beijing"),
          Map.entry("India", "Delhi"),
          Map.entry("Canada", "Ottawa"),
          Map.entry("Mexico", "Mexico"),
          Map.entry("Sweden", "Stockholm"),
          Map.entry("Portugal", "Lisbon"),
          Map.entry("Turkey", "Ankara"),
          Map.entry("Iran", "Tehran"));

  /** Lower-case words of 3 to 5 letters (reverse and count tasks). */
  static final List<String> WORDS =
      List.of(
          "cat", "dog", "sun", "map", "pen", "cup", "hat", "box", "red", "sky", "top", "net", "jam",
          "fox", "owl", "bee", "ant", "egg", "ink", "oak", "rain", "moon", "star", "fish", "bird",
          "tree", "leaf", "rock", "sand", "wind", "milk", "cake", "door", "book", "ship", "lamp",
          "frog", "gold", "salt", "snow", "apple", "lemon", "grape", "melon", "river", "stone",
          "cloud", "house", "horse", "sheep", "bread", "chair", "table", "plant", "light", "water",
          "tiger", "zebra", "panda", "robot", "piano", "paper", "otter", "llama", "mango", "peach",
          "onion", "bacon", "candy", "daisy");
}
