"""Dataset loaders: original annotation files → :class:`~stg_lightning.eval.records.EvalDataset`."""

import os
from pathlib import Path

from stg_lightning.eval.loaders.gyt import load_gyt
from stg_lightning.eval.loaders.myt import load_class_dict, load_myt
from stg_lightning.eval.loaders.yc_inter import load_yc_inter

__all__ = ["load_class_dict", "load_gyt", "load_myt", "load_yc_inter", "shared_data_root"]


def shared_data_root() -> Path:
    """Where the original dataset files live: ``$STG_SHARED_DATA``, else ``<repo>/../shared/data``."""
    default = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return Path(os.environ.get("STG_SHARED_DATA", default))
