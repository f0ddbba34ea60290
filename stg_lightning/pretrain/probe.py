"""Zero-shot diagnostics of a (pretrained) backbone: pointing on held-out benchmark frames, retrieval.

Pointing: for a frame of a step of a held-out benchmark video (drawn in memory from the generator's plan,
distractors moving with their hands), heat = cosine(patch token, sentence token of "<verb> the <object>");
the point is the centre of the argmax patch; a hit if it falls inside the acting object's box (object +
hand). Text-blind references on the same frames: a random on-screen object's centre, a random moving
object's box centre (acting object or distractor), and chance by area.

Verb choice: on the same frames, the acting object's phrase with each verb of the vocabulary ("spin the
egg", "shake the egg", ...), scored by the best patch; a hit if the true verb scores highest (chance
1 / verbs). It tells whether the backbone binds the verb to the object or only finds the object.

Frame verb choice: the same choice scored by the frame (CLS) token alone, the readout of the paper's *when*
(a backbone trained at frame level only, as CLIP, should make it while pointing poorly).

Retrieval: frame → caption top-1 on held-out pairs; a hit if the chosen caption fits the frame
(`data.caption_fits`: it names all the frame's actions and nothing that is not shown).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from stg_lightning.backbones import Backbone
from stg_lightning.evaluating import evaluating
from stg_lightning.pretrain.data import PairSet
from stg_lightning.synth.config import SynthConfig
from stg_lightning.synth.script import build_vocabulary
from stg_lightning.synth.writer import SPLITS, plan_and_scene


@dataclass
class ProbeConfig:
    """pointing_frames: held-out step frames (1 per second of each step, evenly subsampled) of the
    benchmark split `split` (its planned videos are drawn in memory, not read from disk).
    batch_size: frames encoded at once."""

    pointing_frames: int = 400
    split: str = "gyt"
    batch_size: int = 256


@dataclass
class PointingSet:
    """frames uint8 [M, 3, H, W]; texts "<verb> the <object>"; boxes [M, 4] (x1, y1, x2, y2 inclusive) of
    the acting object + hand; per frame the (x, y) centres of all on-screen objects and of all movers;
    per frame "<verb> the <object>" for the acting object and every verb, the true verb first."""

    frames: Tensor
    texts: list[str]
    boxes: Tensor
    object_centres: list[np.ndarray]
    mover_centres: list[np.ndarray]
    verb_texts: list[list[str]] = field(default_factory=list)

    def baselines(self) -> dict[str, float]:
        """Text-blind pointing accuracies: random object, random moving object, chance by area."""
        boxes = self.boxes.numpy()
        size = self.frames.shape[-1] * self.frames.shape[-2]
        area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1) / size
        return {
            "random_object": float(
                np.mean([_inside(c, b).mean() for c, b in zip(self.object_centres, boxes)])
            ),
            "random_mover": float(np.mean([_inside(c, b).mean() for c, b in zip(self.mover_centres, boxes)])),
            "chance_area": float(area.mean()),
        }


def _inside(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """bool [n]: pixel (floor of each (x, y)) inside the inclusive box."""
    px, py = np.floor(points[:, 0]), np.floor(points[:, 1])
    return (px >= box[0]) & (px <= box[2]) & (py >= box[1]) & (py <= box[3])


def draw_pointing_set(synth: SynthConfig, cfg: ProbeConfig) -> PointingSet:
    """Step frames of the held-out benchmark videos of `cfg.split`, with their ground truth."""
    if cfg.split not in SPLITS[1:]:
        raise ValueError(f"probe.split must be one of the evaluation splits {SPLITS[1:]}, got {cfg.split!r}")
    if synth.eval_videos < 1:
        raise ValueError("probe: the synth config has eval_videos=0; pointing needs held-out videos")
    vocab = build_vocabulary(synth)
    plans = [plan_and_scene(synth, vocab, cfg.split, i) for i in range(synth.eval_videos)]
    moments = [(v, k) for v, (plan, _) in enumerate(plans) for s in plan.steps for k in range(s.start, s.end)]
    chosen = np.linspace(0, len(moments) - 1, min(cfg.pointing_frames, len(moments))).round().astype(int)
    frames, texts, boxes, object_centres, mover_centres, verb_texts = [], [], [], [], [], []
    for v, k in (moments[i] for i in chosen):
        plan, scene = plans[v]
        frame, obj_boxes = scene.render(float(k), plan.activities(float(k)), plan.wandering(float(k)))
        step = plan.step_at(float(k))
        frames.append(frame)
        cls = plan.steps[step].cls
        texts.append(cls.sentence)
        others = [replace(cls, verb=verb).sentence for verb in vocab.verbs if verb != cls.verb]
        verb_texts.append([cls.sentence, *others])
        boxes.append(obj_boxes[plan.step_objects[step]])
        ox, oy = scene.camera(float(k))
        object_centres.append(np.array([(p.cx + ox, p.cy + oy) for p in scene.placements]))
        mover_centres.append(np.array([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in obj_boxes.values()]))
    return PointingSet(
        frames=torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(),
        texts=texts,
        boxes=torch.tensor(boxes),
        object_centres=object_centres,
        mover_centres=mover_centres,
        verb_texts=verb_texts,
    )


def _encode_frames(backbone: Backbone, frames: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    """L2-normalised global [M, D] and patch [M, N, D] tokens of uint8 frames [M, 3, H, W]."""
    device = next(backbone.parameters()).device
    globals_, patches = [], []
    for chunk in frames.split(batch_size):
        tokens = backbone.encode_frames(backbone.normalize(chunk.to(device))[:, None])
        globals_.append(F.normalize(tokens.global_[:, 0], dim=-1).cpu())
        patches.append(F.normalize(tokens.patches[:, 0], dim=-1).cpu())
    return torch.cat(globals_), torch.cat(patches)


def _encode_texts(backbone: Backbone, texts: list[str], batch_size: int) -> Tensor:
    device = next(backbone.parameters()).device
    out = [
        F.normalize(
            backbone.encode_text(backbone.tokenize(texts[i : i + batch_size]).to(device)).sentence, dim=-1
        )
        for i in range(0, len(texts), batch_size)
    ]
    return torch.cat(out).cpu()


def patch_centres(grid: tuple[int, int], image_size: int) -> Tensor:
    """(x, y) pixel coordinates [N, 2] of the patch centres of a row-major h×w grid."""
    h, w = grid
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([(cols.flatten() + 0.5) * image_size / w, (rows.flatten() + 0.5) * image_size / h], 1)


def zero_shot_pointing(backbone: Backbone, pointing: PointingSet, batch_size: int = 256) -> float:
    """Fraction of frames whose argmax-cosine patch centre lies inside the acting object's box."""
    with evaluating(backbone):
        _, patches = _encode_frames(backbone, pointing.frames, batch_size)
        texts = _encode_texts(backbone, pointing.texts, batch_size)
    heat = torch.einsum("mnd,md->mn", patches, texts)
    points = patch_centres(backbone.grid, backbone.image_size)[heat.argmax(-1)].numpy()
    return float(np.mean([_inside(p[None], b)[0] for p, b in zip(points, pointing.boxes.numpy())]))


def zero_shot_verb_choice(
    backbone: Backbone, pointing: PointingSet, batch_size: int = 256, frame_token: bool = False
) -> float:
    """Fraction of frames where the true verb's phrase has the highest best-patch cosine among all verbs
    (`frame_token`: the frame token's cosine instead)."""
    if not pointing.verb_texts:
        raise ValueError("zero_shot_verb_choice: the pointing set has no verb_texts")
    per_frame = len(pointing.verb_texts[0])
    with evaluating(backbone):
        frames, patches = _encode_frames(backbone, pointing.frames, batch_size)
        texts = _encode_texts(backbone, [t for ts in pointing.verb_texts for t in ts], batch_size)
    texts = texts.view(len(patches), per_frame, -1)
    if frame_token:
        scores = torch.einsum("md,mvd->mv", frames, texts)
    else:
        scores = torch.einsum("mnd,mvd->mvn", patches, texts).amax(-1)
    return float((scores.argmax(-1) == 0).float().mean())


def zero_shot_retrieval(backbone: Backbone, pairs: PairSet, batch_size: int = 256) -> float:
    """Frame → caption top-1 accuracy over all captions of `pairs` (a hit: the caption fits the frame)."""
    with evaluating(backbone):
        frames, _ = _encode_frames(backbone, pairs.frames, batch_size)
        captions = _encode_texts(backbone, pairs.captions, batch_size)
    best = (frames @ captions.T).argmax(-1)
    fits = pairs.caption_fits(torch.arange(len(pairs)), best)
    return float(fits.diagonal().float().mean())


def probe(
    backbone: Backbone, pointing: PointingSet, pairs: PairSet, batch_size: int = 256
) -> dict[str, float]:
    """Zero-shot pointing, verb choice and retrieval of `backbone`."""
    return {
        "pointing": zero_shot_pointing(backbone, pointing, batch_size),
        "verb_choice": zero_shot_verb_choice(backbone, pointing, batch_size),
        "frame_verb_choice": zero_shot_verb_choice(backbone, pointing, batch_size, frame_token=True),
        "retrieval": zero_shot_retrieval(backbone, pairs, batch_size),
    }


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per name, one column per key of the first row (numbers to 3 decimals)."""
    columns = list(next(iter(rows.values())))
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows.items():
        cells = [
            f"{values[c]:.3f}" if isinstance(values.get(c), float) else str(values.get(c, ""))
            for c in columns
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
