"""One optimisation step of the training loop, eager or compiled (the fast path on a GPU).

:class:`TrainStep` runs ``zero_grad; (loss, wrong) = step_fn(x, y); (s * loss).backward(); optimizer.step()``,
where ``step_fn`` (the forward under autocast, the criterion :func:`empirical.loss.forward_loss`, the error
count) is the unit given to ``torch.compile``.  The module itself is never wrapped (checkpoints keep their
``state_dict`` keys) and the optimiser stays outside the graph (the learning rate is read at every step); on
CUDA the SGD update is the fused kernel (:func:`make_optimizer`).

``compile``: ``"none"``, a ``torch.compile`` mode, or ``"auto"`` (``"reduce-overhead"``, CUDA graphs, on CUDA
in a single non-deterministic process with Triton; else ``"none"``); measured in benchmarks/RESULTS.md
(ResNet-18 on an H100: 8.45 ms/step eager, 2.81 ms/step with CUDA graphs).  ``channels_last``: ``"on"``,
``"off"`` or ``"auto"`` (CUDA and a model with convolutions).  A failed compile warns once
(:class:`CompileFallbackWarning`) and the step reruns eagerly, BatchNorm buffers restored, for the rest of
the run.  Nothing in the step synchronises with the host.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from .loss import PLAIN_MSE_SCALE, check_mse_scale, forward_loss

__all__ = [
    "COMPILE_MODES", "CHANNELS_LAST_OPTIONS", "CompileFallbackWarning", "TrainStep",
    "check_options", "compile_usable", "make_optimizer", "resolve_channels_last", "resolve_compile",
]

#: Values of ``TrainConfig.compile`` (the last three are ``torch.compile`` modes).
COMPILE_MODES: tuple[str, ...] = ("auto", "none", "default", "reduce-overhead", "max-autotune-no-cudagraphs")
#: Values of ``TrainConfig.channels_last``.
CHANNELS_LAST_OPTIONS: tuple[str, ...] = ("auto", "on", "off")


class CompileFallbackWarning(RuntimeWarning):
    """``torch.compile`` failed; the run continues in eager mode."""


def check_options(compile: str, channels_last: str) -> None:
    """``ValueError`` naming the option when ``compile`` or ``channels_last`` is not a known value."""
    if compile not in COMPILE_MODES:
        raise ValueError(f"unknown compile {compile!r}: expected one of {', '.join(map(repr, COMPILE_MODES))}")
    if channels_last not in CHANNELS_LAST_OPTIONS:
        raise ValueError(
            f"unknown channels_last {channels_last!r}: expected one of {', '.join(map(repr, CHANNELS_LAST_OPTIONS))}"
        )


def compile_usable(device: torch.device) -> tuple[bool, str]:
    """Whether ``torch.compile``'s default backend can run on ``device``, and why not."""
    try:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            return False, "torch.compile is not supported on this Python / platform"
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - broken installations
        return False, f"torch._dynamo unavailable: {exc}"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            return False, "Triton is not installed"
    return True, ""


def resolve_compile(option: str, device: torch.device, *, distributed: bool = False,
                    deterministic: bool = False) -> str:
    """The ``torch.compile`` mode to use (``"none"`` = eager) for the ``compile`` option."""
    if option != "auto":
        return option
    if device.type != "cuda" or distributed or deterministic:
        return "none"
    usable, why = compile_usable(device)
    if not usable:  # 3x slower steps on an H100 (benchmarks/RESULTS.md, "GPU"): said, as a failed compile is
        warnings.warn(f"compile 'auto' trains eagerly on {device}: {why}", CompileFallbackWarning, stacklevel=2)
    return "reduce-overhead" if usable else "none"


def resolve_channels_last(option: str, device: torch.device, model: nn.Module) -> bool:
    """``"auto"``: NHWC on CUDA for a model with 2-d convolutions; ``"on"`` / ``"off"`` as given."""
    if option == "auto":
        return device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())
    return option == "on"


def make_optimizer(params, *, lr: float, momentum: float, weight_decay: float,
                   device: torch.device) -> tuple[torch.optim.SGD, str]:
    """``(SGD with momentum and weight decay, "fused" or "default")``: the fused kernel (the same arithmetic
    in one multi-tensor kernel) on CUDA, the default implementation elsewhere."""
    params = list(params)
    if device.type == "cuda":
        try:
            return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=True), "fused"
        except (RuntimeError, ValueError, TypeError):  # an old torch, or a parameter type without a fused kernel
            pass
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay), "default"


def set_optimizer_implementation(optimizer: torch.optim.Optimizer, implementation: str) -> None:
    """After ``load_state_dict``: keep this run's implementation, not the checkpoint's."""
    for group in optimizer.param_groups:
        if "fused" in group:
            group["fused"] = True if implementation == "fused" else None
        if "foreach" in group and implementation == "fused":
            group["foreach"] = None


class TrainStep:
    """``step(x, y, scale)``: one SGD step on a batch; returns ``(loss, wrong)`` on the device.

    ``loss``: the detached float32 batch-mean criterion; ``wrong``: the int64 count of wrong predictions;
    ``scale`` multiplies the loss before ``backward`` (data-parallel reweighting).  ``net``: the module called
    (the model or its DDP wrapper); ``model``: the plain module; ``loss`` / ``mse_scale``:
    :func:`empirical.loss.network_loss` (math §3.6); ``autocast``: a context factory.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        num_classes: int,
        loss: str = "mse",
        *,
        autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
        channels_last: bool = False,
        compile_mode: str = "none",
        model: nn.Module | None = None,
        mse_scale: Sequence[float] = PLAIN_MSE_SCALE,
    ) -> None:
        self.mse_scale = check_mse_scale(mse_scale, loss)
        if compile_mode not in COMPILE_MODES or compile_mode == "auto":
            raise ValueError(f"compile_mode must be 'none' or a torch.compile mode, got {compile_mode!r}")
        self.net, self.optimizer = net, optimizer
        self.model = model if model is not None else net
        self.num_classes, self.loss_kind = int(num_classes), loss
        self.autocast, self.channels_last = autocast, bool(channels_last)
        self.compile_mode = compile_mode
        self._compiled = None
        self._seen: set = set()
        if compile_mode != "none":
            try:
                kwargs: dict[str, Any] = {} if compile_mode == "default" else {"mode": compile_mode}
                self._compiled = torch.compile(self._step_fn, **kwargs)
            except Exception as exc:  # noqa: BLE001 - torch.compile itself refused (e.g. unsupported platform)
                self._fall_back(exc)

    def _step_fn(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        loss, logits = forward_loss(self.net, x, y, self.num_classes, self.loss_kind, self.autocast,
                                    self.mse_scale)
        wrong = (logits.detach().argmax(dim=1) != y).sum()
        return loss, wrong

    def _fall_back(self, exc: BaseException) -> None:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        warnings.warn(
            f"torch.compile (compile={self.compile_mode!r}) failed: {type(exc).__name__}: {first}. "
            "Training continues in eager mode for the rest of this run "
            "(set compile='none', or pass --compile none, to skip compiling).",
            CompileFallbackWarning, stacklevel=3,
        )
        self._compiled = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, scale: float | None = None):
        self.optimizer.zero_grad(set_to_none=True)
        if self._compiled is not None:
            signature = (tuple(x.shape), x.dtype, tuple(y.shape))
            # a new input signature compiles (or recompiles): keep the buffers BatchNorm updates
            # in the forward, to restore them if compiling fails after the forward ran
            saved = None if signature in self._seen else [b.detach().clone() for b in self.model.buffers()]
            try:
                if self.compile_mode == "reduce-overhead":  # CUDA graphs
                    torch.compiler.cudagraph_mark_step_begin()
                loss, wrong = self._compiled(x, y)
                (loss if scale is None else loss * scale).backward()
                self._seen.add(signature)
            except Exception as exc:  # noqa: BLE001 - any failure of the compiled step: the eager step reruns it
                self._fall_back(exc)
                if saved is not None:
                    with torch.no_grad():
                        for b, s in zip(self.model.buffers(), saved):
                            b.copy_(s)
                self.optimizer.zero_grad(set_to_none=True)
        if self._compiled is None:  # eager, or the compiled step has just failed
            loss, wrong = self._step_fn(x, y)
            (loss if scale is None else loss * scale).backward()
        self.optimizer.step()
        return loss.detach(), wrong
