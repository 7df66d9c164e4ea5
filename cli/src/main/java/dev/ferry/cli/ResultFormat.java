package dev.ferry.cli;

/** {@code --format} of {@code generate}. */
enum ResultFormat { text, json }
