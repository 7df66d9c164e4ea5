package dev.ferry.cli;

/** {@code --format} of {@code plan} and {@code explain}. */
enum ReportFormat { table, json }
