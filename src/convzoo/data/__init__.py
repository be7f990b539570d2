"""Data: the catalog of named data sets, their readers, and the device-resident loader."""

from .augment import AUGMENTS, Augment, adaptation, get_augment
from .catalog import dataset_names, load_dataset
from .dataset import ArraySplit, DataSet, FolderSplit
from .loader import Batches, make_loader

__all__ = [
    "AUGMENTS", "ArraySplit", "Augment", "Batches", "DataSet", "FolderSplit", "adaptation",
    "dataset_names", "get_augment", "load_dataset", "make_loader",
]
