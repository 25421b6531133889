"""tfcompat: find TensorFlow environment mismatches before they crash."""

__version__ = "0.1.0"
