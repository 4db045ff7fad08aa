"""The optimiser wrapper of promptsg: non-finite guard, mixed precision on any device."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
from mmengine.dist import all_reduce, is_distributed
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from torch import Tensor, nn

from promptsg.errors import ConfigError, PromptSGError
from promptsg.registry import OPTIM_WRAPPERS

NONFINITE_POLICIES = ('skip', 'stop', 'off')
AMP_DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


def autocast_device_type(model: nn.Module) -> str:
    """The device type ('cuda', 'cpu', ...) of ``model``'s parameters, read when a step runs,
    so that a wrapper built before ``model.cuda()`` still autocasts on the GPU."""
    param = next(model.parameters(), None)
    return param.device.type if param is not None else 'cpu'


class NonFiniteLossError(PromptSGError, FloatingPointError):
    """Training met a NaN/Inf loss or gradient under ``optim_wrapper.nonfinite='stop'``."""


@OPTIM_WRAPPERS.register_module()
class ReIDOptimWrapper(OptimWrapper):
    """mmengine's ``OptimWrapper`` (gradient accumulation; ``clip_grad`` applied before the
    step) plus a guard against non-finite losses and gradients, and autocast.

    Before every parameter update the total loss and the gradients are checked; with a NaN or
    Inf the offending loss terms (or, for finite losses, the first parameters with non-finite
    gradients) are named and the policy applies:

    - ``'skip'``: the update is skipped (gradients zeroed, and the buffers such as BatchNorm
      running statistics put back as they were before its forward), counted in ``nonfinite_skips``
      (logged as ``train/nonfinite_skips`` and saved with the optimiser state) and logged as a
      warning (the text also in ``last_nonfinite``); after ``max_skips`` skips in a row the
      run stops as with ``'stop'``;
    - ``'stop'``: :class:`NonFiniteLossError` is raised before the weights change, naming the
      last checkpoint written (the last good one);
    - ``'off'``: no check (mmengine's behaviour).

    Under DDP the ranks agree (one rank's NaN skips the step on all). The backward pass always
    runs, so ranks never wait on each other.

    Args:
        optimizer: the optimiser (built by the constructor).
        nonfinite: 'skip', 'stop' or 'off'.
        max_skips: consecutive skipped updates after which 'skip' stops the run (None: never).
        dtype: None (float32), 'bfloat16' or 'float16': autocast the forward pass on the
            model parameters' device (CPU or GPU), resolved at every step. 'float16' adds a gradient scaler, whose own
            overflow skips are not counted as non-finite events.
        loss_scale: 'dynamic', a float (static scale) or GradScaler kwargs (float16 only).
        **kwargs: ``OptimWrapper``'s ``accumulative_counts`` and ``clip_grad``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        nonfinite: str = 'skip',
        max_skips: int | None = 100,
        dtype: str | None = None,
        loss_scale: str | float | dict = 'dynamic',
        **kwargs,
    ) -> None:
        if nonfinite not in NONFINITE_POLICIES:
            raise ConfigError(
                f"optim_wrapper.nonfinite '{nonfinite}' is not one of {list(NONFINITE_POLICIES)}"
            )
        if max_skips is not None and (not isinstance(max_skips, int) or max_skips < 1):
            raise ConfigError(
                f'optim_wrapper.max_skips must be None or an int >= 1; got {max_skips!r}'
            )
        if dtype is not None and dtype not in AMP_DTYPES:
            raise ConfigError(f"optim_wrapper.dtype '{dtype}' is not one of {[None, *AMP_DTYPES]}")
        clip = kwargs.get('clip_grad')
        if clip is not None and not (isinstance(clip, dict) and clip):
            raise ConfigError(
                'optim_wrapper.clip_grad must be None or a dict such as dict(max_norm=5.0); '
                f'got {clip!r}'
            )
        super().__init__(optimizer, **kwargs)
        self.nonfinite = nonfinite
        self.max_skips = max_skips
        self.nonfinite_skips = 0
        self.last_nonfinite: str | None = None
        self._skips_in_a_row = 0
        self.cast_dtype = AMP_DTYPES.get(dtype) if dtype else None
        self.loss_scaler = None
        if dtype == 'float16':
            if loss_scale == 'dynamic':
                scaler_kwargs = {}
            elif isinstance(loss_scale, (int, float)):
                scaler_kwargs = dict(init_scale=float(loss_scale), growth_interval=2**31 - 1)
            elif isinstance(loss_scale, dict):
                scaler_kwargs = dict(loss_scale)
            else:
                raise ConfigError(
                    "optim_wrapper.loss_scale must be 'dynamic', a number or a dict; "
                    f'got {loss_scale!r}'
                )
            # its tensors follow the loss's device; the name only gates a CUDA-availability check
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
            self.loss_scaler = torch.amp.GradScaler(device, **scaler_kwargs)
        self._unscaled = self._clipped = False
        self._watched: nn.Module | None = None
        self._hook_handle = None
        self._names: dict[int, str] = {}
        self._terms: dict[str, Tensor] | None = None
        self._bad_terms: list[str] = []
        self._saved_buffers: list[tuple[Tensor, Tensor]] = []

    def _params(self) -> list[Tensor]:
        return [p for g in self.optimizer.param_groups for p in g['params']]

    # -- seeing the loss terms -------------------------------------------------------------
    def _capture(self, module: nn.Module, args, output) -> None:
        if isinstance(output, dict) and module.training:
            self._terms = {k: v for k, v in output.items() if 'loss' in k}

    def _watch(self, model: nn.Module) -> None:
        """Record the model's loss dict on each forward (a forward hook), to name bad terms."""
        if self._watched is model:
            return
        if self._hook_handle is not None:
            self._hook_handle.remove()
        self._hook_handle = model.register_forward_hook(self._capture)
        self._watched = model
        inner = getattr(model, 'module', model)
        self._names = {id(p): n for n, p in inner.named_parameters()}

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-sync control of ``OptimWrapper``, autocast when ``dtype`` is set, and the
        forward hook that lets the guard name a non-finite loss term."""
        self._watch(model)
        self._save_buffers(model)
        with super().optim_context(model):
            if self.cast_dtype is None:
                yield
            else:
                device_type = autocast_device_type(model)
                with torch.autocast(device_type=device_type, dtype=self.cast_dtype):
                    yield

    # -- buffers of a skipped update -------------------------------------------------------
    def _save_buffers(self, model: nn.Module) -> None:
        """At the first forward of an update, copy the model's buffers (BatchNorm running
        statistics, ...), so that a skipped update can put back what its forward took in."""
        if self.nonfinite != 'skip' or self._inner_count % self._accumulative_counts:
            return
        self._saved_buffers = [(b, b.detach().clone()) for b in model.buffers()]

    @torch.no_grad()
    def _restore_buffers(self) -> None:
        for buffer, saved in self._saved_buffers:
            buffer.copy_(saved)

    # -- the update ------------------------------------------------------------------------
    def _nonfinite_terms(self) -> list[str]:
        terms = self._terms or {}
        bad = []
        for name, value in terms.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            if any(not torch.isfinite(torch.as_tensor(v)).all() for v in values):
                bad.append(name)
        return bad or ['loss (the total; its terms were not seen)']

    def _check_and_clip(self) -> list[str]:
        """Names of non-finite gradients ([] when all are finite); clip by norm when configured.

        One pass computes the total norm for both the check and the clipping; only a
        non-finite total is looked into parameter by parameter.
        """
        params = [p for p in self._params() if p.grad is not None]
        if not params:
            return []
        clip_norm = bool(self.clip_grad_kwargs) and self.grad_name == 'grad_norm'
        norm_type = self.clip_grad_kwargs.get('norm_type', 2.0) if clip_norm else 2.0
        total = torch.nn.utils.get_total_norm([p.grad for p in params], norm_type)
        if not torch.isfinite(total):
            finite = [bool(torch.isfinite(p.grad).all()) for p in params]
            bad = [
                self._names.get(id(p), f'param#{i}') for i, p in enumerate(params) if not finite[i]
            ]
            return [f'gradient of {n}' for n in bad] or ['the total gradient norm']
        if clip_norm:
            torch.nn.utils.clip_grads_with_norm_(params, self.clip_grad_kwargs['max_norm'], total)
            self.message_hub.update_scalar('train/grad_norm', float(total))
            self._clipped = True
        return []

    def _agree(self, bad: bool) -> bool:
        """Whether any rank saw a non-finite value."""
        if not is_distributed():
            return bad
        flag = torch.tensor([float(bad)], device=self._params()[0].device)
        all_reduce(flag, op='max')
        return bool(flag.item())

    def update_params(
        self, loss: Tensor, step_kwargs: dict | None = None, zero_kwargs: dict | None = None
    ) -> None:
        """Scale, backward, and at the end of an accumulation window check and step (or skip)."""
        step_kwargs, zero_kwargs = step_kwargs or {}, zero_kwargs or {}
        if self.nonfinite != 'off' and not bool(torch.isfinite(loss.detach()).all()):
            self._bad_terms.extend(t for t in self._nonfinite_terms() if t not in self._bad_terms)
        self._terms = None
        self.backward(self.scale_loss(loss))
        if not self.should_update():
            return
        if self.nonfinite == 'off':
            self.step(**step_kwargs)
            self.zero_grad(**zero_kwargs)
            return
        if self.loss_scaler is not None:
            self.loss_scaler.unscale_(self.optimizer)
            self._unscaled = True
        bad = list(self._bad_terms)
        if not bad and self.loss_scaler is None:
            bad = self._check_and_clip()
        self._bad_terms = []
        if self._agree(bool(bad)):
            self._on_nonfinite(bad or ['a loss or gradient on another rank'])
            if self.loss_scaler is not None:
                self.loss_scaler.update()
            self._unscaled = self._clipped = False
            self.zero_grad(**zero_kwargs)
            self._restore_buffers()
        else:
            self._skips_in_a_row = 0
            self.step(**step_kwargs)
            self.zero_grad(**zero_kwargs)
        self.message_hub.update_scalar('train/nonfinite_skips', self.nonfinite_skips)

    def _on_nonfinite(self, what: list[str]) -> None:
        where = (
            f'epoch {self.message_hub.get_info("epoch", 0) + 1}, '
            f'iter {self.message_hub.get_info("iter", 0) + 1}'
        )
        found = f'non-finite value in {", ".join(what[:5])} at {where}'
        self.last_nonfinite = found
        self._skips_in_a_row += 1
        limit = self.max_skips is not None and self._skips_in_a_row >= self.max_skips
        if self.nonfinite == 'stop' or limit:
            last = self.message_hub.get_info('last_ckpt')
            kept = (
                f'the last good checkpoint is {last}' if last else 'no checkpoint was written yet'
            )
            why = f' ({self._skips_in_a_row} updates in a row)' if limit else ''
            raise NonFiniteLossError(f'training stopped: {found}{why}; {kept}')
        self.nonfinite_skips += 1
        print_log(
            f'skipped the update: {found} (skip {self.nonfinite_skips})',
            logger='current',
            level=logging.WARNING,
        )

    def backward(self, loss: Tensor, **kwargs) -> None:
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs) -> None:
        """Clip (unless the guard already did; after unscaling under float16), then step."""
        if self.clip_grad_kwargs and not self._clipped:
            if self.loss_scaler is not None and not self._unscaled:
                self.loss_scaler.unscale_(self.optimizer)
            self._clip_grad()
        if self.loss_scaler is None:
            self.optimizer.step(**kwargs)
        else:
            self.loss_scaler.step(self.optimizer, **kwargs)  # skips when float16 overflowed
            self.loss_scaler.update()
        self._unscaled = self._clipped = False

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = super().state_dict()
        state['nonfinite_skips'] = self.nonfinite_skips
        if self.loss_scaler is not None:
            state['loss_scaler'] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self.nonfinite_skips = int(state_dict.pop('nonfinite_skips', 0))
        scaler = state_dict.pop('loss_scaler', None)
        if scaler is not None and self.loss_scaler is not None:
            self.loss_scaler.load_state_dict(scaler)
        super().load_state_dict(state_dict)
