"""Shared pytest set-up: quiet TensorFlow, offline albumentations, doctest names."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    import keras

    import valf

    doctest_namespace.update(np=np, keras=keras, valf=valf)
