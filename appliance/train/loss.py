"""Next-token loss on the labelled positions only, without the whole vocabulary's logits.

For a small model with a large vocabulary (SmolLM2: 576 hidden units, 49k tokens) the fp32
logits of one 4 x 256 batch are 200 MB, and the stock path keeps two or three tensors of
that size for the backward pass (logits, log-softmax, their gradient) although most
positions of an SFT batch carry no label at all. Here the backbone's hidden states at the
labelled positions go through the output head in chunks, and each chunk's gradient with
respect to the hidden state is computed right away; autograd keeps one hidden-sized tensor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

IGNORE = -100
CHUNK_TOKENS = 1024  # rows of logits alive at once: 1024 x 49k x 4 B = 200 MB at most


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Per-row cross-entropy of ``hidden @ weight.T`` for a frozen head; the gradient is formed in the forward pass."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                chunk: int) -> torch.Tensor:
        dtype = torch.promote_types(hidden.dtype, weight.dtype)
        rows_all, head = hidden.to(dtype), weight.to(dtype)
        want = ctx.needs_input_grad[0]
        grad_hidden = torch.empty_like(rows_all) if want else None
        losses = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, hidden.shape[0], chunk):
                rows = rows_all[start : start + chunk]
                wanted = targets[start : start + chunk]
                logits = (rows @ head.T).float()
                normaliser = torch.logsumexp(logits, dim=-1)
                losses[start : start + chunk] = normaliser - logits.gather(1, wanted[:, None]).squeeze(1)
                if grad_hidden is None:
                    continue
                # d(loss)/d(logits) = softmax - one-hot, built in place of the logits
                gradient = logits.sub_(normaliser[:, None]).exp_()
                gradient[torch.arange(len(wanted), device=wanted.device), wanted] -= 1.0
                grad_hidden[start : start + chunk] = gradient.to(dtype) @ head
        if grad_hidden is not None:
            ctx.save_for_backward(grad_hidden)
        ctx.hidden_dtype = hidden.dtype
        return losses

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (grad_hidden,) = ctx.saved_tensors
        return (grad_hidden * grad_output[:, None].to(grad_hidden.dtype)).to(ctx.hidden_dtype), None, None, None


def token_losses(hidden: torch.Tensor, head: nn.Linear, targets: torch.Tensor, *,
                 chunk: int = CHUNK_TOKENS) -> torch.Tensor:
    """fp32 cross-entropy of each row of ``hidden`` against its target under the output head.

    A trainable head (rare with LoRA) takes autograd's ordinary path; a frozen one the
    chunked path that never keeps a vocabulary-sized tensor.
    """
    if head.weight.requires_grad:
        return nn.functional.cross_entropy(head(hidden).float(), targets, reduction="none")
    return _ChunkedLinearCrossEntropy.apply(hidden, head.weight, targets, chunk)


def _plain_head(model: Any) -> nn.Linear | None:
    """The output head when logits are exactly ``hidden @ head.weight.T``, else None.

    Families that scale or soft-cap their logits (Gemma 2, Cohere, Granite) or wrap the head
    in an adapter take the model's own forward pass instead.
    """
    config = model.config
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None) not in (None, 1, 1.0):
        return None
    if getattr(config, "logits_scaling", None) not in (None, 1, 1.0):
        return None
    head = model.get_output_embeddings()
    if type(head) is not nn.Linear or head.bias is not None:
        return None
    return head


class CausalLMLoss(nn.Module):
    """The module the loop calls (and DDP wraps): tokens and labels in, per-token losses out.

    Holding the peft model as its only child keeps parameter names, the adapter and the
    checkpoints exactly those of the peft model.
    """

    def __init__(self, model: nn.Module, *, chunk: int = CHUNK_TOKENS) -> None:
        super().__init__()
        self.model = model
        self.chunk = chunk
        unwrap = getattr(model, "get_base_model", None)  # a peft model wraps the transformers one
        base: Any = unwrap() if unwrap is not None else model
        head = _plain_head(base)
        backbone = getattr(base, base.base_model_prefix, None) if head is not None else None
        # a tuple, not attributes: nn.Module would register them as second copies of the children
        self._split = (backbone, head) if isinstance(backbone, nn.Module) and head is not None else None

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(fp32 loss of every labelled position in row-major order, the row each belongs to)."""
        targets = labels[:, 1:]
        keep = targets != IGNORE
        rows = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(targets)[keep]
        if self._split is None:
            logits = self.model(input_ids=input_ids, use_cache=False).logits
            picked = logits[:, :-1][keep].float()
            return nn.functional.cross_entropy(picked, targets[keep], reduction="none"), rows
        backbone, head = self._split
        hidden = backbone(input_ids=input_ids, use_cache=False)[0]
        return token_losses(hidden[:, :-1][keep], head, targets[keep], chunk=self.chunk), rows
