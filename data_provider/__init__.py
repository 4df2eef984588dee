"""Everything that touches files: record readers, writers and converters."""
