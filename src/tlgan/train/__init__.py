"""Train your own feature extractor from labelled faces: a logistic probe or a small CNN.

Data in (each gives uint8 images at the generator's resolution and a label
matrix with NaN where a face has no label for a feature):

- ``from_label_files``: labels given with ``tlgan label`` (JSON Lines, see
  :mod:`tlgan.labels`); the faces are rendered again from their latents;
- ``from_celeba``: a CelebA-format folder (``list_attr_celeba.txt``, optional
  ``list_eval_partition.txt``, the aligned images), cropped to the generator's
  face framing (:data:`CELEBA_CROP`);
- ``from_csv_folder``: ``labels.csv`` with columns ``image,feature1,...`` (1, 0
  or blank) and the images beside it, centre-cropped to a square.

Learners:

- ``fit_probe``: one logistic regression per feature on a frozen embedding
  (faceres' 1024-d descriptor by default), its strength chosen by
  cross-validation; seconds to train, good from a few hundred labels;
- ``fit_cnn``: a small CNN on the 64x64 images, for large labelled sets.

Both report per feature the accuracy (threshold 0.5) and ROC AUC on data the
model did not see: nested cross-validation for small sets, the data set's own
test partition when it has one, else a stratified 20% hold-out. Labels that
are all one class, or have fewer than ``min_per_class`` of one class, are
refused with a message.

``train_extractor`` runs it all and writes a named extractor (see
:mod:`tlgan.extractors.trained`) that every command accepts by name.

Modules: :mod:`~tlgan.train.data` (the readers and :class:`Dataset`),
:mod:`~tlgan.train.metrics` (class checks, held-out results),
:mod:`~tlgan.train.probe`, :mod:`~tlgan.train.cnn` and :mod:`~tlgan.train.job`
(``train_extractor``). The names below are importable from ``tlgan.train``.
"""

from __future__ import annotations

from ..logistic import PROBE_CS, auc, choose_c
from .cnn import CNNFit, fit_cnn
from .data import CELEBA_CROP, Dataset, celeba_box, celeba_name, combine, from_celeba, from_csv_folder, from_label_files
from .job import TrainResult, embed_images, train_extractor
from .metrics import MIN_PER_CLASS, FeatureResult, TrainError, check_classes, class_problems
from .probe import NESTED_MAX, ProbeFit, fit_probe

__all__ = [
           "CELEBA_CROP",
           "MIN_PER_CLASS",
           "NESTED_MAX",
           "PROBE_CS",
           "CNNFit",
           "Dataset",
           "FeatureResult",
           "ProbeFit",
           "TrainError",
           "TrainResult",
           "auc",
           "celeba_box",
           "celeba_name",
           "check_classes",
           "choose_c",
           "class_problems",
           "combine",
           "embed_images",
           "fit_cnn",
           "fit_probe",
           "from_celeba",
           "from_csv_folder",
           "from_label_files",
           "train_extractor",
]
