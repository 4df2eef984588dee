"""Everything that touches files: readers, writers, converters, generators.

`gqn` is imported first so that its quieting of TensorFlow's start-up log
happens before any module here imports TensorFlow.
"""
import gqn  # noqa: F401
