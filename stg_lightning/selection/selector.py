"""Frame selection (docs/method.md §2): keep T of a clip's U candidate frames, by text-frame transport or baselines.

FrameSelector is a plain module the LightningModule calls inside its step, not a Lightning callback: it must
see the *current* head projections of the very batch being trained, its output (which frames) feeds the
heads' forward in the same step, and it runs under no_grad. A callback could only act around the step.

Frame score (strategy "sinkhorn"): U_valid · Σ_k Q[k, f] · P[k, f], the similarity of frame f to the words the
plan sends to it. The method's Σ_k Q[k, f] is not used: every Sinkhorn iteration ends by giving each valid frame
exactly 1/U_valid, so that sum is uniform (measured: it picks noise after a single iteration); weighting the
plan by P keeps Sinkhorn's effect (each word must be covered, so frames are spread over the words) while
ranking frames by how well they match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stg_lightning.selection.sinkhorn import plan_entropy, sinkhorn
from stg_lightning.tokens import FrameTokens, TextTokens

Projection = Callable[[Tensor], Tensor]
Granularity = Literal["global", "local"]


@dataclass
class SelectionConfig:
    """strategy: none (keep all U) | random | topk (mean word-frame similarity) | sinkhorn.
    text_granularity: sentence token ("global") or words ("local"); video_granularity: frame token ("global")
    or the sum over the frame's patches of their similarity ("local") — the 4 cells of paper Table 5.
    num_frames: T. epsilon, iterations: Sinkhorn. use_raw_features: similarity on raw backbone tokens
    (authors' code) instead of the heads' projections."""

    strategy: Literal["none", "random", "topk", "sinkhorn"] = "sinkhorn"
    text_granularity: Granularity = "local"
    video_granularity: Granularity = "global"
    num_frames: int = 16
    epsilon: float = 0.05
    iterations: int = 3
    use_raw_features: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in ("none", "random", "topk", "sinkhorn"):
            raise ValueError(f"SelectionConfig.strategy: unknown {self.strategy!r}")
        for name in ("text_granularity", "video_granularity"):
            if getattr(self, name) not in ("global", "local"):
                raise ValueError(
                    f"SelectionConfig.{name} must be 'global' or 'local', got {getattr(self, name)!r}"
                )
        if self.num_frames < 1 or self.epsilon <= 0 or self.iterations < 1:
            raise ValueError(
                f"SelectionConfig: need num_frames >= 1, epsilon > 0, iterations >= 1; got {self}"
            )


@dataclass
class SelectionResult:
    """indices [B, T] (time order; padding after the valid ones), mask [B, T] (False where a clip had fewer
    than T valid frames), plan Q [B, K, U] (sinkhorn only), stats: scalar tensors for logging."""

    indices: Tensor
    mask: Tensor
    plan: Tensor | None = None
    stats: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class SelectionSpace:
    """The projections that put frames and text into one space for scoring (None = raw backbone tokens).

    The model decides which of its heads provides them (`GroundingModel.selection_space`); the selector
    only applies them.
    """

    frame: Projection | None = None
    patch: Projection | None = None
    sentence: Projection | None = None
    word: Projection | None = None


def _project(proj: Projection | None, x: Tensor, name: str) -> Tensor:
    if proj is None:
        return x
    try:
        return proj(x)
    except RuntimeError as err:
        raise ValueError(
            f"FrameSelector: the {name} projection cannot project tokens of shape {tuple(x.shape)}: {err}"
        ) from err


def top_frames(scores: Tensor, frame_mask: Tensor, num_frames: int) -> tuple[Tensor, Tensor]:
    """Top `num_frames` valid frames by score, back in time order → (indices [B, T], mask [B, T])."""
    u = scores.shape[1]
    k = min(num_frames, u)
    picked = scores.masked_fill(~frame_mask, float("-inf")).topk(k, dim=1).indices
    valid = frame_mask.gather(1, picked)
    order = torch.where(valid, picked, picked + u).argsort(dim=1)  # valid frames first, each group by time
    indices, valid = picked.gather(1, order), valid.gather(1, order)
    if k < num_frames:
        indices = F.pad(indices, (0, num_frames - k))
        valid = F.pad(valid, (0, num_frames - k), value=False)
    return indices, valid


class FrameSelector(nn.Module):
    """Picks T of U frames per clip; stateless (no parameters), runs without gradient."""

    def __init__(self, cfg: SelectionConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or SelectionConfig()

    def similarity(
        self, frames: FrameTokens, text: TextTokens, space: SelectionSpace | None = None
    ) -> tuple[Tensor, Tensor]:
        """P [B, K', U] (K' = 1 for the sentence) and the text mask [B, K'], on L2-normalised features."""
        if space is None or self.cfg.use_raw_features:
            space = SelectionSpace()
        if self.cfg.video_granularity == "global":
            video = F.normalize(_project(space.frame, frames.global_, "frame"), dim=-1)
        else:  # Σ_n cos(t, p_n) = t̂ · Σ_n p̂_n: sum the normalised patches once per frame
            video = F.normalize(_project(space.patch, frames.patches, "patch"), dim=-1).sum(-2)
        if self.cfg.text_granularity == "global":
            words = F.normalize(_project(space.sentence, text.sentence, "sentence"), dim=-1)[:, None]
            word_mask = torch.ones(words.shape[:2], dtype=torch.bool, device=words.device)
        else:
            words = F.normalize(_project(space.word, text.words, "word"), dim=-1)
            word_mask = text.word_mask.bool()
        if words.shape[-1] != video.shape[-1]:
            raise ValueError(
                f"FrameSelector: text dim {words.shape[-1]} != video dim {video.shape[-1]}; with "
                "use_raw_features the backbone must give both sides one space, else pass a SelectionSpace"
            )
        return words.float() @ video.float().transpose(1, 2), word_mask

    @torch.no_grad()
    def forward(
        self,
        frames: FrameTokens,
        frame_mask: Tensor,
        text: TextTokens,
        space: SelectionSpace | None = None,
        generator: torch.Generator | None = None,
    ) -> SelectionResult:
        """Select frames of frames.global_ [B, U, ·] given frame_mask [B, U]; `generator` seeds `random`."""
        cfg, frame_mask = self.cfg, frame_mask.bool()
        b, u = frame_mask.shape
        if cfg.strategy == "none":
            indices = torch.arange(u, device=frame_mask.device).expand(b, u)
            return SelectionResult(indices, frame_mask, None, self._stats(indices, frame_mask, frame_mask))
        plan = None
        if cfg.strategy == "random":
            device = generator.device if generator is not None else frame_mask.device
            scores = torch.rand(b, u, generator=generator, device=device).to(frame_mask.device)
        else:
            sim, word_mask = self.similarity(frames, text, space)
            if cfg.strategy == "topk":
                scores = (sim * word_mask[..., None]).sum(1) / word_mask.sum(1, keepdim=True).clamp(min=1)
            else:
                plan = sinkhorn(sim, word_mask, frame_mask, cfg.epsilon, cfg.iterations)
                scores = frame_mask.sum(1, keepdim=True) * (plan * sim).sum(1)
        indices, mask = top_frames(scores, frame_mask, cfg.num_frames)
        stats = self._stats(indices, mask, frame_mask)
        if plan is not None:
            stats["plan_entropy"] = plan_entropy(plan, word_mask, frame_mask).mean()
        return SelectionResult(indices, mask, plan, stats)

    @staticmethod
    def _stats(indices: Tensor, mask: Tensor, frame_mask: Tensor) -> dict[str, Tensor]:
        """mean_position: index / (U_valid - 1) over selections (valid frames are a prefix; 0.5 = centred)."""
        span = (frame_mask.sum(1, keepdim=True) - 1).clamp(min=1)
        pos = (indices.float() / span)[mask]
        return {"mean_position": pos.mean() if pos.numel() else pos.new_tensor(0.0)}
