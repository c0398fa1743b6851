"""QA sets: records, their file formats and summaries, and immutable dataset versions."""
