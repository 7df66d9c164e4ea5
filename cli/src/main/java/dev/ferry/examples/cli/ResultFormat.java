package dev.ferry.examples.cli;

/** {@code --format} of {@code generate}. */
enum ResultFormat { text, json }
