import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # helper modules (envs.py, probe_helpers.py) sit beside the tests


@pytest.fixture(scope="session")
def matrix():
    from tfcompat.matrix import load_matrix

    return load_matrix()
