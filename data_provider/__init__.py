"""Everything that touches files: record readers, writers and converters."""
import gqn  # noqa: F401  (switches TensorFlow to the 1.x graph API first)
