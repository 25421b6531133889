"""Rule families, by hundreds: 1xx TensorFlow and Python packages, 2xx driver and GPUs, 3xx CUDA
libraries, 4xx ROCm, 5xx custom ops, 6xx fleet, 7xx the import probe (--probe).

Importing this package registers every rule with the engine.
"""

from tfcompat.fleet import drift as fleet_drift  # noqa: F401  (6xx: registered here, judged by `gate` across nodes)
from tfcompat.rules import custom_ops, driver, gpus, libraries, probe, resources, rocm, site, tensorflow  # noqa: F401
