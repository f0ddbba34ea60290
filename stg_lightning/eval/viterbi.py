"""Monotonic alignment of frames to an ordered step list interleaved with optional background.

States ``bg_0, s_0, bg_1, s_1, …, s_{S-1}, bg_S``: every step takes one contiguous, non-empty run of
frames, in order; background runs between (and around) steps are optional. A frame in step i scores
``similarity[t, i]``, a frame in background scores ``background_score``; the alignment maximises the sum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BACKGROUND = -1


def viterbi_align(similarity: Any, background_score: float = 0.5) -> np.ndarray:
    """Best monotonic alignment of ``similarity`` [T, S] (array or CPU tensor) → step index [T] (-1 = background).

    Ties between optimal paths are broken while tracing back from the last second: stay in the state,
    else come from the previous state, else skip the background before it; the path ends in the last
    step rather than the trailing background. So among equal paths, each state is entered as early as
    the optimum allows (tested in tests/test_eval_metrics.py).
    """
    sim = np.asarray(
        similarity.detach().cpu() if hasattr(similarity, "detach") else similarity, dtype=np.float64
    )
    if sim.ndim != 2:
        raise ValueError(f"similarity must be [frames, steps], got shape {sim.shape}")
    num_frames, num_steps = sim.shape
    if num_steps == 0:
        return np.full(num_frames, BACKGROUND, dtype=np.int64)
    if num_frames < num_steps:
        raise ValueError(f"cannot align {num_steps} steps to {num_frames} frames: each step needs a frame")
    n_states = 2 * num_steps + 1
    emit = np.full((num_frames, n_states), float(background_score))
    emit[:, 1::2] = sim
    # A jump of 2 (step → next step, skipping background) is only allowed out of step states.
    skip_ok = np.zeros(n_states, dtype=bool)
    skip_ok[3::2] = True
    score = np.full(n_states, -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((num_frames, n_states), dtype=np.int8)  # 0 stay, 1 from q-1, 2 from q-2
    for t in range(1, num_frames):
        from1 = np.concatenate([[-np.inf], score[:-1]])
        from2 = np.where(skip_ok, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        cand = np.stack([score, from1, from2])
        back[t] = np.argmax(cand, axis=0)  # ties: stay first
        score = cand[back[t], np.arange(n_states)] + emit[t]
    state = n_states - 2 + int(np.argmax(score[-2:]))
    path = np.empty(num_frames, dtype=np.int64)
    for t in range(num_frames - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    return np.where(path % 2 == 1, (path - 1) // 2, BACKGROUND)


def similarity_from_labels(pred_labels: list[str | None], steps: list[str]) -> np.ndarray:
    """Per-frame label predictions → one-hot similarity [T, S] (1 where the label equals the step)."""
    return np.array([[float(p is not None and p == s) for s in steps] for p in pred_labels]).reshape(
        len(pred_labels), len(steps)
    )
