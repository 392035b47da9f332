"""Datasets for the experiments of math §7: standard files read locally, held as device tensors.

Public API::

    DATASETS                      # registry: name -> DatasetSpec
    load_dataset(name, *, split="train", data_root=None, per_class=None, seed=0,
                 device="cpu", image_size=None, standardize_with=None, standardize=None,
                 **options) -> Dataset
    load_train_test(name, ...) -> (train, test | None)
    index_dataset(train) -> Dataset   # x = arange(n): the input of the UFM
    batches(dataset, batch_size, *, shuffle, generator=None, drop_last=False) -> BatchIterator
"""

from .batching import BatchIterator, batches
from .loader import Dataset, index_dataset, load_dataset, load_train_test
from .sources import DATASETS, SYSTEM_ROOTS, DatasetSpec, get_spec

__all__ = [
    "DATASETS",
    "SYSTEM_ROOTS",
    "DatasetSpec",
    "Dataset",
    "BatchIterator",
    "batches",
    "get_spec",
    "load_dataset",
    "load_train_test",
    "index_dataset",
]
