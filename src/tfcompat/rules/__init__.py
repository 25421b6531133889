"""Rule families, by hundreds: 1xx TensorFlow and Python packages, 2xx driver and GPUs.

Importing this package registers every rule with the engine.
"""

from tfcompat.rules import driver, tensorflow  # noqa: F401
