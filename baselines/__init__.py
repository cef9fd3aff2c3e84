"""Re-implemented all-in-one restoration baselines: PromptIR and AirNet.

    model = baselines.create_model("promptir")              # released configuration
    model = baselines.create_model("airnet", **baselines.MINI_OVERRIDES["airnet"])
    model = baselines.load_checkpoint("promptir", "model.ckpt")   # eval mode

Every model maps float N x 3 x H x W in [0, 1] to N x 3 x H x W and has an int
attribute ``pad_multiple``.  A model may define ``training_loss(degraded, clean)``
(AirNet does; PromptIR trains with plain L1).  Facts and sources: README.md.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from torch import nn

from baselines.airnet import MINI_CONFIG as _AIRNET_MINI
from baselines.airnet import AirNet
from baselines.checkpoints import CheckpointMismatchError, UnsafeCheckpointError, load_checkpoint
from baselines.promptir import MINI_CONFIG as _PROMPTIR_MINI
from baselines.promptir import PromptIR

__all__ = [
    "create_model",
    "list_models",
    "load_checkpoint",
    "CheckpointMismatchError",
    "UnsafeCheckpointError",
    "MINI_OVERRIDES",
    "PromptIR",
    "AirNet",
]

_REGISTRY: Dict[str, Callable[..., nn.Module]] = {"promptir": PromptIR, "airnet": AirNet}

# Keyword overrides for the offline "mini" profile (small, fast on a CPU).
MINI_OVERRIDES: Dict[str, Dict[str, Any]] = {"promptir": dict(_PROMPTIR_MINI), "airnet": dict(_AIRNET_MINI)}

# Short spellings accepted for the constructor keywords.
_ALIASES: Dict[str, Dict[str, str]] = {
    "promptir": {"blocks": "num_blocks", "refinement": "num_refinement_blocks",
                 "refinement_blocks": "num_refinement_blocks", "num_heads": "heads"},
    "airnet": {"num_blocks": "n_blocks", "num_groups": "n_groups", "groups": "n_groups"},
}


def _expand_airnet_width(overrides: Dict[str, Any]) -> None:
    """AirNet ``channels=c``: restorer width c, encoder widths (c, 2c, 4c), projection 4c.

    The release is c = 64 (64 / 64-128-256 / 256); explicit keywords win.
    """
    c = overrides.pop("channels")
    overrides.setdefault("n_feats", c)
    overrides.setdefault("encoder_channels", (c, 2 * c, 4 * c))
    overrides.setdefault("moco_dim", 4 * c)


def list_models() -> List[str]:
    """Names accepted by :func:`create_model` and :func:`load_checkpoint`."""
    return sorted(_REGISTRY)


def _check_name(name: str) -> str:
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown baseline {name!r}; allowed names: {', '.join(list_models())}")
    return key


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build baseline ``name`` (released configuration unless ``overrides`` change it)."""
    key = _check_name(name)
    for short, full in _ALIASES[key].items():
        if short in overrides:
            if full in overrides:
                raise ValueError(f"give either {short!r} or {full!r}, not both")
            overrides[full] = overrides.pop(short)
    if key == "airnet" and "channels" in overrides:
        _expand_airnet_width(overrides)
    try:
        return _REGISTRY[key](**overrides)
    except TypeError as err:  # unknown keyword: say which ones exist
        import inspect

        params = [p for p in inspect.signature(_REGISTRY[key].__init__).parameters if p != "self"]
        raise TypeError(f"{err}; {key} accepts: {', '.join(params)}") from err
