"""Learning-rate schedules with torch.optim.lr_scheduler's semantics, stepped once per epoch.

``lr(k)`` is the learning rate of the epoch that follows k completed epochs (k = 0 for
the first epoch), as after k calls of ``scheduler.step()`` in PyTorch:

    step:         base * gamma ** (k // step_size)                              (StepLR)
    multistep:    base * gamma ** (number of milestones <= k)                   (MultiStepLR)
    exponential:  base * gamma ** k                                             (ExponentialLR)
    cosine:       eta_min + (base - eta_min) (1 + cos(pi k / T_max)) / 2        (CosineAnnealingLR)
    reduce_on_plateau: base, multiplied by factor when the monitored metric stops improving
                  (ReduceLROnPlateau, stateful: ``observe(metric)`` after each epoch)

A linear warmup (LinearLR) runs first when ``warmup_iters`` > 0, as SequentialLR would
chain them: for k < warmup_iters the rate is base * (start_factor + (1 - start_factor) k /
warmup_iters), and the schedule proper starts from k = warmup_iters as if from 0.
``scale`` multiplies the result (rollback after divergence halves it).
"""

from __future__ import annotations

import bisect
import math


class Schedule:
    """A per-epoch learning-rate schedule; ``state_dict`` holds everything a resume needs."""

    def __init__(
        self,
        base_lr: float,
        name: str = "constant",
        warmup_iters: int = 0,
        warmup_start_factor: float = 1.0,
        **params,
    ):
        """``params`` are the schedule's own, all given (the defaults are the config's)."""
        self.base_lr = base_lr
        self.name = name
        self.params = params
        self.warmup_iters = warmup_iters
        self.warmup_start_factor = warmup_start_factor
        self.scale = 1.0
        # ReduceLROnPlateau state (torch's names)
        self.mode = params.get("mode", "min")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.plateau_lr = base_lr

    def lr(self, k: int) -> float:
        """The learning rate after k completed epochs."""
        if k < self.warmup_iters:
            f = self.warmup_start_factor + (1.0 - self.warmup_start_factor) * k / self.warmup_iters
            return self.base_lr * f * self.scale
        k -= self.warmup_iters
        p, base = self.params, self.base_lr
        if self.name == "constant":
            lr = base
        elif self.name == "step":
            lr = base * p["gamma"] ** (k // p["step_size"])
        elif self.name == "multistep":
            lr = base * p["gamma"] ** bisect.bisect_right(sorted(p["milestones"]), k)
        elif self.name == "exponential":
            lr = base * p["gamma"] ** k
        elif self.name == "cosine":
            eta_min = p["eta_min"]
            lr = eta_min + (base - eta_min) * (1 + math.cos(math.pi * k / p["T_max"])) / 2
        elif self.name == "reduce_on_plateau":
            lr = self.plateau_lr
        else:
            raise ValueError(f"unknown lr schedule {self.name!r}")
        return lr * self.scale

    def observe(self, k: int, metric: float) -> None:
        """After epoch k (1-based) with the monitored metric: ReduceLROnPlateau.step(metric)."""
        if self.name != "reduce_on_plateau" or k <= self.warmup_iters or not math.isfinite(metric):
            return
        p = self.params
        if self._is_better(metric):
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > p["patience"]:
            old = self.plateau_lr
            new = max(old * p["factor"], p["min_lr"])
            if old - new > p["eps"]:
                self.plateau_lr = new
            self.cooldown_counter = p["cooldown"]
            self.num_bad_epochs = 0

    def _is_better(self, a: float) -> bool:
        threshold = self.params["threshold"]
        rel = self.params["threshold_mode"] == "rel"
        if self.mode == "min":
            return a < (self.best * (1.0 - threshold) if rel else self.best - threshold)
        return a > (self.best * (threshold + 1.0) if rel else self.best + threshold)

    def state_dict(self) -> dict:
        return {
            "scale": self.scale,
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
            "plateau_lr": self.plateau_lr,
        }

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)
