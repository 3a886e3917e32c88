"""Photo edits that keep the person: pivotal tuning, motion of the photo's own detail, seam-free blending.

``tuning`` fine-tunes a copy of the generator to one photo (PTI) and saves the weight delta; ``motion``
turns face-mesh landmarks into a dense field; ``blend`` masks and blends band by band; ``edit`` puts them
together in ``PhotoEdit``, a photo ready for slider moves at its own resolution.
"""

from .blend import REGIONS, region_mask, seam_score
from .edit import PhotoEdit
from .tuning import Tuning, load_tuning, save_tuning, tune_pivot, tuned_generator, tuning_path

__all__ = ["REGIONS", "PhotoEdit", "Tuning", "load_tuning", "region_mask", "save_tuning", "seam_score", "tune_pivot",
           "tuned_generator", "tuning_path"]
