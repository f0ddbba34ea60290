"""Log-domain, batched, masked Sinkhorn-Knopp (docs/method.md §2): an entropic transport plan words → frames."""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def sinkhorn(
    similarity: Tensor, row_mask: Tensor, col_mask: Tensor, epsilon: float, iterations: int
) -> Tensor:
    """Transport plan Q = Diag(α) exp(P/ε) Diag(β) with uniform marginals over the valid rows and columns.

    similarity [B, K, U]; row_mask [B, K] and col_mask [B, U] (True = valid). Row sums tend to 1/K_valid and
    column sums equal 1/U_valid (each iteration ends with the column update). Padded rows/columns get exactly
    zero mass, and so does a whole sample with no valid row or no valid column. Computed in float32, no grad.
    """
    if similarity.dim() != 3:
        raise ValueError(f"sinkhorn: similarity must be [B, K, U], got {tuple(similarity.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError(f"sinkhorn: need epsilon > 0 and iterations >= 1, got {epsilon=}, {iterations=}")
    neg_inf = float("-inf")
    sample_ok = row_mask.any(1) & col_mask.any(1)
    rows = row_mask & sample_ok[:, None]
    cols = col_mask & sample_ok[:, None]
    log_kernel = (similarity.float() / epsilon).masked_fill(~(rows[:, :, None] & cols[:, None, :]), neg_inf)
    log_a = -torch.log(rows.sum(1, keepdim=True).clamp(min=1).float()).expand_as(rows)
    log_b = -torch.log(cols.sum(1, keepdim=True).clamp(min=1).float()).expand_as(cols)
    log_u = torch.zeros_like(log_a)
    log_v = torch.zeros_like(log_b)
    # torch.where keeps masked potentials at -inf (a fully masked logsumexp is -inf; -inf - -inf is NaN).
    for _ in range(iterations):
        log_u = torch.where(rows, log_a - torch.logsumexp(log_kernel + log_v[:, None, :], dim=2), neg_inf)
        log_v = torch.where(cols, log_b - torch.logsumexp(log_kernel + log_u[:, :, None], dim=1), neg_inf)
    return torch.exp(log_kernel + log_u[:, :, None] + log_v[:, None, :])


def plan_entropy(plan: Tensor, row_mask: Tensor, col_mask: Tensor) -> Tensor:
    """Normalised entropy of each plan → [B] in [0, 1]: (H(Q) - log max(K, U)) / log min(K, U), valid counts.

    With uniform marginals H(Q) lies between those bounds: 0 means every frame is sent to a single word
    (a sharp assignment), 1 means Q is the independent (uniform) plan. 0 with a single word or frame.
    """
    mass = plan.flatten(1).float()
    p = mass / mass.sum(1, keepdim=True).clamp(min=torch.finfo(mass.dtype).tiny)
    ent = -torch.special.xlogy(p, p).sum(1)
    k, u = row_mask.sum(1).float(), col_mask.sum(1).float()
    low, span = torch.log(torch.maximum(k, u).clamp(min=1)), torch.log(torch.minimum(k, u).clamp(min=1))
    return torch.where(span > 0, ((ent - low) / span.clamp(min=1e-12)).clamp(0, 1), torch.zeros_like(ent))
