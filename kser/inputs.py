"""Which input pipeline reads the records: tf.data where TensorFlow is installed, else a PyDataset.

One place decides, so that training, cross-validation and evaluation never ask. tf.data
(:mod:`kser.data`) is the design and the fastest on a CPU; :mod:`kser.pydataset` gives the same
batches where TensorFlow is absent (a JAX or PyTorch machine). ``KSER_INPUT_PIPELINE=pydataset``
(or ``tf.data``) overrides the choice, for comparisons and tests.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from kser.errors import KserError

PIPELINE_ENV = "KSER_INPUT_PIPELINE"
PIPELINES = ("tf.data", "pydataset")


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported here (without importing it: that takes seconds)."""
    return importlib.util.find_spec("tensorflow") is not None


def input_pipeline() -> str:
    """The pipeline this process uses: ``$KSER_INPUT_PIPELINE``, else tf.data when TensorFlow is installed."""
    chosen = os.environ.get(PIPELINE_ENV, "")
    if chosen and chosen not in PIPELINES:
        raise KserError(f"{PIPELINE_ENV}={chosen!r} is not a pipeline; choose one of {', '.join(PIPELINES)}")
    if chosen == "tf.data" and not tensorflow_installed():
        raise KserError(f"{PIPELINE_ENV}=tf.data needs TensorFlow: pip install 'kser[tensorflow]'")
    return chosen or ("tf.data" if tensorflow_installed() else "pydataset")


def make_inputs(records_dir: str | Path, split: Any, *, steps: int | None = None, **options: Any) -> Any:
    """Batches of ``split`` from the chosen pipeline; ``options`` are :func:`kser.data.make_dataset`'s.

    ``steps``: batches per epoch of an endless training dataset for ``model.fit`` (tf.data repeats
    its dataset; the PyDataset draws each epoch itself). Evaluation data is one pass either way.
    Cached features (``feature_cache``) are held in memory and read by the PyDataset.
    """
    if options.get("feature_cache") is None and input_pipeline() == "tf.data":
        from kser.data import make_dataset

        dataset = make_dataset(records_dir, split, **options)
        return dataset.repeat() if steps is not None else dataset
    from kser.pydataset import RecordsDataset

    options.pop("deterministic", None)  # a PyDataset is always in order
    options.pop("shuffle_buffer", None)  # it permutes whole epochs
    return RecordsDataset(records_dir, split, steps=steps, **options)
