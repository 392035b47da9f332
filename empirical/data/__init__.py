"""Datasets for the experiments of math §7: standard files read locally (:func:`load_dataset`, the registry
:data:`DATASETS`), held as device tensors and batched by slicing (:func:`batches`); :func:`index_dataset` gives
the UFM's input (the sample indices).
"""

from .batching import BatchIterator, batches
from .loader import Dataset, index_dataset, load_dataset, load_train_test
from .sources import DATASETS, SYSTEM_ROOTS, DatasetSpec, get_spec

__all__ = [
    "BatchIterator",
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "SYSTEM_ROOTS",
    "batches",
    "get_spec",
    "index_dataset",
    "load_dataset",
    "load_train_test",
]
