"""Data and files: data sets in memory (:mod:`~.datasets`), file loaders (:mod:`~.loaders`,
with the text formats in :mod:`~.text_formats`), the data a run configures (:mod:`~.sources`),
feature scaling (:mod:`~.scaling`), and pickle-free model files (:mod:`~.model_io`) on a
shared archive format (:mod:`~.archive`). Readers open regular files only (:mod:`~.files`)."""

from jaxlogreg.data.datasets import Dataset as Dataset
from jaxlogreg.data.datasets import make_classification as make_classification
from jaxlogreg.data.datasets import train_test_split as train_test_split
from jaxlogreg.data.files import NotRegularFileError as NotRegularFileError
from jaxlogreg.data.loaders import DataFileError as DataFileError
from jaxlogreg.data.loaders import load_catvnoncat as load_catvnoncat
from jaxlogreg.data.loaders import load_dataset as load_dataset
from jaxlogreg.data.loaders import load_hdf5 as load_hdf5
from jaxlogreg.data.loaders import load_npy as load_npy
from jaxlogreg.data.loaders import load_npz as load_npz
from jaxlogreg.data.scaling import fit_scaler as fit_scaler
from jaxlogreg.data.sources import DataConfig as DataConfig
from jaxlogreg.data.sources import Splits as Splits
from jaxlogreg.data.sources import load_file as load_file
from jaxlogreg.data.sources import load_splits as load_splits
from jaxlogreg.data.text_formats import load_csv as load_csv
from jaxlogreg.data.text_formats import load_svmlight as load_svmlight
