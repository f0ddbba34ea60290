"""GroundingModel: the global-local model of docs/method.md as one module with a small public API.

In the spirit of open_clip's `encode_image / encode_text / get_logits`, everything outside `model/` (the
training module, inference, callbacks, benchmarks) uses only these methods:

  training                                        inference
  encode_video(frames, frame_mask) → FrameTokens  encode_queries(texts) → Queries
  encode_text(token_ids) / tokenize(texts)        frame_query_scores(frames, queries)  (global head)
  select_frames(frames, mask, text)               patch_query_scores(patches, queries)  (patch cosines)
  global_embeddings(...) → (video, sentence)      heat(patches, queries)  (local-head rollout)
  global_scores / local_scores → PairScores
  forward(frames, mask, text, negatives) → GroundingOutput

Scores across DDP ranks (`PairScores`): each rank scores its own videos against every rank's texts and its
own texts against every rank's videos; the gathers keep autograd, so `losses.py` sees scores only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import vmap

from stg_lightning.backbones import BackboneConfig, backbone_config, build_backbone
from stg_lightning.distributed import gather_no_grad, gather_with_grad, rank, world_size
from stg_lightning.model.global_head import GlobalHead, GlobalHeadConfig
from stg_lightning.model.local_head import LocalHead, LocalHeadConfig
from stg_lightning.model.patch_pooling import patch_cosines
from stg_lightning.model.rollout import rollout_heatmap
from stg_lightning.selection import FrameSelector, SelectionConfig, SelectionResult, SelectionSpace
from stg_lightning.tokens import FrameTokens, TextTokens

HEADS = ("global", "local")


@dataclass
class PairScores:
    """Video–text scores of one rank: `video_to_text` [Bl, B] (its videos × all texts) and `text_to_video`
    [Bl, B] (its texts × all videos); row i's positive is column `offset + i` in both. `video_to_negatives`
    [Bl, K]: each video against its own sentence's word-swapped negatives, valid where `negative_mask`."""

    video_to_text: Tensor
    text_to_video: Tensor
    offset: int = 0
    video_to_negatives: Tensor | None = None
    negative_mask: Tensor | None = None


@dataclass
class GroundingOutput:
    """What one forward produces: per-head PairScores (a head not asked for is absent) and the selection."""

    selection: SelectionResult
    scores: dict[str, PairScores] = field(default_factory=dict)


@dataclass
class Queries:
    """Encoded text queries: `embedding` [Q, d] L2-normalised (global head, or the raw sentence token),
    `words` [Q, K, Dw] and `word_mask` [Q, K]: what the local head reads (`GroundingModel.local_text`)."""

    embedding: Tensor
    words: Tensor
    word_mask: Tensor


def global_pair_scores(video: Tensor, sentence: Tensor) -> PairScores:
    """Cosine scores of this rank's video/sentence embeddings [Bl, d] against every rank's (gathered with
    gradient)."""
    all_video, all_sentence = gather_with_grad(video), gather_with_grad(sentence)
    return PairScores(
        GlobalHead.scores(video, all_sentence),
        GlobalHead.scores(sentence, all_video),
        rank() * video.shape[0],
    )


def local_pair_scores(
    head: LocalHead, patches: Tensor, patch_mask: Tensor, words: Tensor, word_mask: Tensor
) -> PairScores:
    """`head`'s scores of this rank's clips across ranks: only this rank's rows and columns are computed, from
    tokens gathered with gradient — (2W-1)·Bl² pairs per rank (local videos × all texts, other videos × local
    texts) instead of W·Bl²."""
    if world_size() == 1:
        scores = head.pairwise_scores(patches, patch_mask, words, word_mask)
        return PairScores(scores, scores.T, 0)
    bl, offset = patches.shape[0], rank() * patches.shape[0]
    all_patches, all_patch_mask = gather_with_grad(patches), gather_no_grad(patch_mask)
    all_words, all_word_mask = gather_with_grad(words), gather_no_grad(word_mask)
    v2t = head.pairwise_scores(patches, patch_mask, all_words, all_word_mask)
    others = torch.ones(all_patches.shape[0], dtype=torch.bool, device=patches.device)
    others[offset : offset + bl] = False
    other_v2t = head.pairwise_scores(all_patches[others], all_patch_mask[others], words, word_mask)
    video_by_text = torch.cat([other_v2t[:offset], v2t[:, offset : offset + bl], other_v2t[offset:]], dim=0)
    return PairScores(v2t, video_by_text.T, offset)


def selection_space(cfg: SelectionConfig, global_head: GlobalHead, local_head: LocalHead) -> SelectionSpace:
    """The local head's input projections for local×local selection, else the global head's f and g
    (applied to patch / word tokens too, which the backbone puts in the frame / sentence token's space), so
    both sides of a mixed cell are comparable."""
    if cfg.text_granularity == cfg.video_granularity == "local":
        return SelectionSpace(patch=local_head.patch_proj, word=local_head.word_proj)
    f, g = global_head.frame_proj, global_head.text_proj
    return SelectionSpace(frame=f, patch=f, sentence=g, word=g)


def check_selection_space(cfg: SelectionConfig, backbone: nn.Module) -> None:
    """A mixed selection cell puts word tokens through the sentence projection g (patches through the frame
    projection f): the backbone must give them those tokens' width, i.e. one space (CLIP does; S3D-word2vec's
    2048-d words are not in its 512-d sentence space). Fails at build time, not at the first step."""
    if (
        cfg.use_raw_features
        or cfg.strategy in ("none", "random")
        or cfg.text_granularity == cfg.video_granularity
    ):
        return
    side = "text" if cfg.text_granularity == "local" else "video"
    token, dim, into, into_dim = (
        ("word", backbone.word_dim, "sentence", backbone.sentence_dim)
        if side == "text"
        else ("patch", backbone.patch_dim, "frame", backbone.frame_dim)
    )
    if dim != into_dim:
        raise ValueError(
            f"selection: text_granularity={cfg.text_granularity} × video_granularity={cfg.video_granularity} "
            f"projects the backbone's {token} tokens (dim {dim}) like its {into} token (dim {into_dim}), "
            f"which {type(backbone).__name__} does not put in one space; set "
            f"model.selection.{side}_granularity=global or use local×local"
        )


class GroundingModel(nn.Module):
    """Backbone → frame selection → global head + local head (docs/method.md §1–§4)."""

    def __init__(
        self,
        backbone: BackboneConfig | None = None,
        selection: SelectionConfig | None = None,
        global_head: GlobalHeadConfig | None = None,
        local_head: LocalHeadConfig | None = None,
    ) -> None:
        super().__init__()
        self.backbone_cfg = backbone_config(backbone)
        self.backbone = build_backbone(self.backbone_cfg)
        self.selector = FrameSelector(selection or SelectionConfig())
        check_selection_space(self.selector.cfg, self.backbone)
        head_cfg = global_head or GlobalHeadConfig()
        video_dim = self.backbone.frame_dim if head_cfg.frame_pooling == "cls" else self.backbone.patch_dim
        self.global_head = GlobalHead(video_dim, self.backbone.sentence_dim, head_cfg)
        self.local_head = LocalHead(self.backbone.patch_dim, self.backbone.word_dim, local_head)
        if (
            self.local_head.cfg.text_tokens == "sentence"
            and self.backbone.sentence_dim != self.backbone.word_dim
        ):
            raise ValueError(
                f"model.local_head.text_tokens=sentence feeds the sentence token (dim {self.backbone.sentence_dim}) "
                f"to a head built for word tokens (dim {self.backbone.word_dim}); {type(self.backbone).__name__} "
                "does not give them one width: use text_tokens=words"
            )
        head = self.local_head.cfg
        if (
            head.similarity_prior
            and head.similarity_prior_text == "sentence"
            and head.text_tokens == "words"
            and not getattr(self.backbone, "words_with_sentence", False)
        ):
            raise ValueError(
                "model.local_head.similarity_prior_text=sentence reads the sentence token from the last word slot, "
                f"but {type(self.backbone).__name__} does not put it there: set "
                "model.backbone.words_with_sentence=true (or local_head.text_tokens=sentence)"
            )

    # ----------------------------------------------------------------------------------------- facts
    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (h, w) of one frame's tokens."""
        return self.backbone.grid

    @property
    def image_size(self) -> int:
        """Side of the square frames the backbone reads."""
        return self.backbone.image_size

    @property
    def temporal_stride(self) -> int:
        """Input frames per token time step (1 for image backbones, 8 for S3D)."""
        return self.backbone.temporal_stride

    def heads(self, *names: str) -> list[nn.Module]:
        """The named heads ("global", "local"); all of them when none is named."""
        modules = {"global": self.global_head, "local": self.local_head}
        return [modules[n] for n in (names or HEADS)]

    # ----------------------------------------------------------------------------------------- encoders
    def normalize(self, frames: Tensor) -> Tensor:
        """Frames [..., 3, H, W] (uint8, or float in [0, 1]) → the backbone's normalised input."""
        return self.backbone.normalize(frames)

    def encode_video(self, frames: Tensor, frame_mask: Tensor) -> tuple[FrameTokens, Tensor]:
        """Frames [B, U, 3, H, W] (uint8 are normalised here; float ones must be already) → tokens and the
        mask of their time steps (with a temporal stride, a step is valid if any of its frames is)."""
        if frames.dtype == torch.uint8:
            frames = self.backbone.normalize(frames)
        tokens = self.backbone.encode_frames(frames)
        mask = frame_mask.bool().unflatten(1, (-1, self.backbone.temporal_stride)).any(-1)
        return tokens, mask

    def tokenize(self, texts: list[str]) -> Tensor:
        """Sentences → the token ids `encode_text` reads (the backbone's own tokenizer)."""
        return self.backbone.tokenize(texts)

    def encode_text(self, token_ids: Tensor) -> TextTokens:
        return self.backbone.encode_text(token_ids)

    # ----------------------------------------------------------------------------------------- training
    def selection_space(self) -> SelectionSpace:
        """The space frames and text are compared in for selection (`selection_space`)."""
        return selection_space(self.selector.cfg, self.global_head, self.local_head)

    def select_frames(
        self,
        frames: FrameTokens,
        frame_mask: Tensor,
        text: TextTokens,
        generator: torch.Generator | None = None,
    ) -> SelectionResult:
        """T of the U candidate frames per clip, without gradient (docs/method.md §2)."""
        return self.selector(frames, frame_mask, text, self.selection_space(), generator)

    def global_embeddings(
        self, frames: FrameTokens, frame_mask: Tensor, selection: SelectionResult, text: TextTokens
    ) -> tuple[Tensor, Tensor]:
        """(video [B, d], sentence [B, d]) under the global head; the video pools the selected frames."""
        video = self.global_head.encode_video(frames, frame_mask, selection.indices, selection.mask)
        return video, self.global_head.project_text(text.sentence)

    def local_text(self, text: TextTokens) -> tuple[Tensor, Tensor]:
        """What the local head reads of each sentence: (tokens [B, K, Dw], mask [B, K]), the word tokens
        or, with `local_head.text_tokens=sentence`, the sentence token as the one word (K = 1)."""
        if self.local_head.cfg.text_tokens == "sentence":
            return text.sentence[:, None], text.word_mask.new_ones(text.sentence.shape[0], 1)
        return text.words, text.word_mask

    def global_scores(self, video: Tensor, sentence: Tensor) -> PairScores:
        """Cosine scores of this rank's embeddings against every rank's (gathered with gradient)."""
        return global_pair_scores(video, sentence)

    def local_scores(
        self, patches: Tensor, patch_mask: Tensor, words: Tensor, word_mask: Tensor
    ) -> PairScores:
        """Local-head scores of patches [Bl, T, N, Dp] (mask [Bl, T]) and words [Bl, K, Dw] (mask [Bl, K])."""
        return local_pair_scores(self.local_head, patches, patch_mask, words, word_mask)

    def forward(
        self,
        frames: FrameTokens,
        frame_mask: Tensor,
        text: TextTokens,
        heads: tuple[str, ...] = HEADS,
        generator: torch.Generator | None = None,
        negatives: TextTokens | None = None,
        negative_mask: Tensor | None = None,
    ) -> GroundingOutput:
        """Select frames, then score every (video, text) pair of the (global) batch with the asked heads;
        with `negatives` (K per clip, clip-major, e.g. `data.text_negatives`), also each clip against its
        own K (valid where `negative_mask` [B, K]; all valid when it is None)."""
        unknown = set(heads) - set(HEADS)
        if unknown:
            raise ValueError(f"GroundingModel: unknown heads {sorted(unknown)}; choose from {HEADS}")
        selection = self.select_frames(frames, frame_mask, text, generator)
        out = GroundingOutput(selection)
        b = selection.indices.shape[0]
        k = 0 if negatives is None else negatives.sentence.shape[0] // b
        if "global" in heads:
            video, sentence = self.global_embeddings(frames, frame_mask, selection, text)
            out.scores["global"] = self.global_scores(video, sentence)
            if k:
                swapped = self.global_head.project_text(negatives.sentence).unflatten(0, (b, k))
                out.scores["global"].video_to_negatives = F.cosine_similarity(video[:, None], swapped, dim=-1)
        if "local" in heads:
            selected = frames.select(selection.indices)
            out.scores["local"] = self.local_scores(selected.patches, selection.mask, *self.local_text(text))
            if k:
                clips = torch.arange(b, device=selection.mask.device).repeat_interleave(k)
                swapped_scores = self.local_head.forward_pairs(
                    selected.patches[clips], selection.mask[clips], *self.local_text(negatives)
                )
                out.scores["local"].video_to_negatives = swapped_scores.view(b, k)
        if k and negative_mask is None:
            negative_mask = torch.ones(b, k, dtype=torch.bool, device=selection.mask.device)
        for scores in out.scores.values():
            scores.negative_mask = negative_mask if k else None
        return out

    # ----------------------------------------------------------------------------------------- inference
    def encode_queries(self, texts: list[str], raw: bool = False) -> Queries:
        """Queries under the global head's g (`raw`: the backbone's sentence token, zero-shot)."""
        device = next(self.parameters()).device
        text = self.encode_text(self.tokenize(texts).to(device))
        emb = text.sentence if raw else self.global_head.project_text(text.sentence)
        return Queries(F.normalize(emb.float(), dim=-1), *self.local_text(text))

    def project_frame_tokens(self, tokens: Tensor, raw: bool = False) -> Tensor:
        """Frame or patch tokens [..., D] → L2-normalised [..., d] under f (`raw`: unprojected)."""
        if not raw:
            if tokens.shape[-1] != self.global_head.frame_proj.in_features:
                raise ValueError(
                    f"scores read from patch tokens need patch tokens of f's input size "
                    f"{self.global_head.frame_proj.in_features}, got {tokens.shape[-1]}; read the frame token "
                    "and the local head instead (inference temporal='global', spatial='rollout')"
                )
            tokens = self.global_head.project_frames(tokens)
        return F.normalize(tokens.float(), dim=-1)

    def frame_query_scores(self, frames: FrameTokens, queries: Queries, raw: bool = False) -> Tensor:
        """Cosines [B·U, Q] of every frame's token (CLS or mean patch, per the global head) with each query."""
        frame_inputs = self.global_head.frame_inputs(frames).flatten(0, 1)
        return self.project_frame_tokens(frame_inputs, raw) @ queries.embedding.T

    def patch_query_scores(self, patches: Tensor, queries: Queries, raw: bool = False) -> Tensor:
        """Cosines [C, Q, N] of every patch of frames [C, N, Dp] with each query, under f and g."""
        return patch_cosines(self.project_frame_tokens(patches, raw), queries.embedding)

    def heat(self, patches: Tensor, queries: Queries) -> Tensor:
        """Local-head attention rollout [C, Q, N] (rows sum to 1) of every query on every frame [C, N, Dp],
        each frame on its own (docs/evaluation.md §1)."""
        c, q = patches.shape[0], queries.words.shape[0]
        frame_idx = torch.arange(c, device=patches.device).repeat_interleave(q)
        query_idx = torch.arange(q, device=patches.device).repeat(c)

        def one(frame: Tensor, words: Tensor, mask: Tensor) -> Tensor:
            return rollout_heatmap(self.local_head, frame[None], words[None], mask[None])[0]

        heat = vmap(one)(patches[frame_idx], queries.words[query_idx], queries.word_mask[query_idx])
        return heat.reshape(c, q, -1)
