"""Everything that touches files: readers, writers, converters, generators."""
