"""Forward-hook taps: record the outputs of named submodules during a forward pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["FeatureTaps"]


class FeatureTaps:
    """Record outputs of submodules named by their ``named_modules()`` path.

    Example:
        >>> taps = FeatureTaps(model, ["neck.out_convs.0"])
        >>> with taps:
        ...     model(x)
        >>> feat = taps.outputs["neck.out_convs.0"]
    """

    def __init__(self, model: nn.Module, names: Iterable[str]) -> None:
        modules = dict(model.named_modules())
        self.names = list(names)
        missing = [n for n in self.names if n not in modules]
        if missing:
            raise KeyError(f"no submodule named {missing}; some valid names: {list(modules)[:20]}")
        self._modules = {n: modules[n] for n in self.names}
        self._handles: list[RemovableHandle] = []
        self.outputs: dict[str, Any] = {}

    def _hook(self, name: str):
        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            self.outputs[name] = output

        return record

    def __enter__(self) -> FeatureTaps:
        self.outputs = {}
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self._modules.items()]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
