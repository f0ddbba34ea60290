"""Synthetic narrated benchmark (`stg synth`): untrimmed multi-step "recipe" videos with known ground truth.

Output layout under ``--out``::

    train/videos/*.mp4, train/caption.json        HowTo100M captions {vid: {"start", "end", "text"}}
    eval/gyt/videos/*.mp4, eval/gyt/GoundingYouTubeBox.json
        {vid: {"<second>": {"box": [x1, y1, x2, y2], "step": "verb object"}}}
    eval/myt/videos/*.mp4, eval/myt/annotations/<vid>.srt (UTF-8 BOM, CRLF, label e.g. "shake_tomato"),
        eval/myt/weakYouTube_dict.txt             one class per line + trailing space, then "background"
    eval/yc_inter/videos/*.mp4, final_dataset_segments.pkl {(vid, start_s, last_s)},
        final_dataset_annotations.pkl {vid: {k (1-based, frame at t = k - 1 s): (x1, y1, x2, y2)}},
        youcookii_annotations_trainval.json
        {"database": {vid: {"annotations": [{"segment": [s, last], "sentence", "id"}], "duration", "subset"}}}
    eval/<split>/objects.json                     {vid: {"<second>": [[x1, y1, x2, y2], ...]}}, every on-
        screen object at every second in object order (a moving one measured like a GT box, an idle one its
        rest square); no real dataset has it: the random-object baseline reads it
    meta.json                                     config, objects/verbs/classes/tasks, frame size, fps, counts

Boxes are inclusive integer pixels of the synthetic frame (``meta.json`` "frame_size"), tight around the
acting object (with its particles) and its hand, measured on the drawn frame at t = k s. Steps start and end
on whole seconds and cover the frames start <= t < end. Everything is deterministic in ``seed``.
"""

from stg_lightning.synth.config import PRESETS, SceneConfig, ScriptConfig, SynthConfig
from stg_lightning.synth.writer import generate

__all__ = [
    "PRESETS",
    "SceneConfig",
    "ScriptConfig",
    "SynthConfig",
    "generate",
]
