"""Re-implemented all-in-one restoration baselines, built so their released checkpoints load strictly.

    model = baselines.create_model("promptir")              # released configuration
    model = baselines.create_model("airnet", **baselines.mini_config("airnet"))
    model = baselines.load_checkpoint("promptir", "model.ckpt")   # eval mode
    baselines.list_models()   # ['adair', 'airnet', 'moce_ir', 'moce_ir_s', 'promptir']

Every model maps float N x 3 x H x W in [0, 1] to N x 3 x H x W and has an int
attribute ``pad_multiple``.  A model may define ``training_loss(degraded, clean)``
(AirNet and MoCE-IR do; PromptIR and AdaIR train with plain L1).  Facts and sources:
README.md and ../docs/models/.

One :class:`BaselineSpec` per released model is the whole registration: where the class
lives (imported on first use), the keywords that turn the class into that release, the
checkpoint format (key prefix, keywords read from the file) and the mini configuration.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping

from torch import Tensor, nn

from baselines.checkpoints import (
    CheckpointMismatchError,
    CheckpointReadError,
    UnsafeCheckpointError,
    load_checkpoint,
    read_checkpoint,
)

__all__ = [
    "BaselineSpec",
    "REGISTRY",
    "create_model",
    "list_models",
    "get_spec",
    "mini_config",
    "load_checkpoint",
    "CheckpointMismatchError",
    "CheckpointReadError",
    "UnsafeCheckpointError",
    "read_checkpoint",
]


def _no_overrides(sd: Mapping[str, Tensor]) -> Dict[str, Any]:
    return {}


def _airnet_from_file(sd: Mapping[str, Tensor]) -> Dict[str, Any]:
    """The MoCo queue length differs per released file (All 1280, Denoise 768, Derain/Dehaze 256)."""
    queue = sd.get("E.E.queue")
    if isinstance(queue, Tensor) and queue.dim() == 2:
        return {"queue_size": int(queue.shape[1])}
    return {}


def _expand_airnet_width(overrides: Dict[str, Any]) -> None:
    """AirNet ``channels=c``: restorer width c, encoder widths (c, 2c, 4c), projection 4c.

    The release is c = 64 (64 / 64-128-256 / 256); explicit keywords win.
    """
    if "channels" in overrides:
        c = overrides.pop("channels")
        overrides.setdefault("n_feats", c)
        overrides.setdefault("encoder_channels", (c, 2 * c, 4 * c))
        overrides.setdefault("moco_dim", 4 * c)


@dataclass(frozen=True)
class BaselineSpec:
    """How one released model is built, loaded and shrunk for the mini profile."""

    name: str
    target: str  # "module:attribute" of the model class, imported on first use
    release: str  # what load_checkpoint expects, quoted in mismatch reports
    checkpoint_prefix: str = ""  # prefix of every state-dict key in the released file ("net." for Lightning)
    release_kwargs: Mapping[str, Any] = field(default_factory=dict)  # class keywords that make this release
    mini_attr: str = "MINI_CONFIG"  # name of the mini configuration in the target's module
    aliases: Mapping[str, str] = field(default_factory=dict)  # short keyword -> constructor keyword
    from_file: Callable[[Mapping[str, Tensor]], Dict[str, Any]] = _no_overrides  # keywords read off a checkpoint
    expand: Callable[[Dict[str, Any]], None] | None = None  # rewrites convenience keywords in place

    def model_class(self) -> Callable[..., nn.Module]:
        module_name, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def mini(self) -> Dict[str, Any]:
        module = importlib.import_module(self.target.partition(":")[0])
        return dict(getattr(module, self.mini_attr))


_RESTORMER_ALIASES = {"blocks": "num_blocks", "refinement": "num_refinement_blocks",
                      "refinement_blocks": "num_refinement_blocks", "num_heads": "heads"}

REGISTRY: Dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec(
            "promptir", "baselines.promptir:PromptIR",
            "PromptIR(decoder=True) as released by va1shn9v/PromptIR (v1.0 model.ckpt: Lightning checkpoint, "
            "548 tensors under state_dict with prefix 'net.', 35,592,263 parameters)",
            checkpoint_prefix="net.", aliases=_RESTORMER_ALIASES,
        ),
        BaselineSpec(
            "airnet", "baselines.airnet:AirNet",
            "AirNet as released by XLearning-SCU/2022-CVPR-AirNet (ckpt/All.pth: plain state_dict, "
            "584 entries, 8,930,313 parameters, E.E.queue of shape (256, K))",
            aliases={"num_blocks": "n_blocks", "num_groups": "n_groups", "groups": "n_groups"},
            from_file=_airnet_from_file, expand=_expand_airnet_width,
        ),
        BaselineSpec(
            "adair", "baselines.adair:AdaIR",
            "AdaIR(decoder=True) as released by c-yn/AdaIR (Lightning .ckpt, 587 tensors under state_dict with "
            "prefix 'net.', 28,784,824 parameters)",
            checkpoint_prefix="net.", aliases=_RESTORMER_ALIASES,
        ),
        BaselineSpec(
            "moce_ir", "baselines.moce_ir:MoCEIR",
            "MoCE-IR (dim 48) as released by eduardzamfir/MoCE-IR (Lightning last.ckpt, 1262 entries under "
            "state_dict with prefix 'net.', 25,353,796 parameters)",
            checkpoint_prefix="net.", release_kwargs={"dim": 48},
        ),
        BaselineSpec(
            "moce_ir_s", "baselines.moce_ir:MoCEIR",
            "MoCE-IR-S (dim 32) as released by eduardzamfir/MoCE-IR (Lightning last.ckpt, 1262 entries under "
            "state_dict with prefix 'net.', 11,477,752 parameters)",
            checkpoint_prefix="net.", release_kwargs={"dim": 32}, mini_attr="MINI_CONFIG_S",
        ),
    )
}


def list_models() -> List[str]:
    """Names accepted by :func:`create_model` and :func:`load_checkpoint`."""
    return sorted(REGISTRY)


def get_spec(name: str) -> BaselineSpec:
    key = str(name).lower()
    if key not in REGISTRY:
        raise ValueError(f"unknown baseline {name!r}; allowed names: {', '.join(list_models())}")
    return REGISTRY[key]


def mini_config(name: str) -> Dict[str, Any]:
    """Keyword overrides of the offline "mini" profile (small, fast on a CPU)."""
    return get_spec(name).mini()


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build baseline ``name`` (released configuration unless ``overrides`` change it)."""
    spec = get_spec(name)
    for short, full in spec.aliases.items():
        if short in overrides:
            if full in overrides:
                raise ValueError(f"give either {short!r} or {full!r}, not both")
            overrides[full] = overrides.pop(short)
    if spec.expand is not None:
        spec.expand(overrides)
    cls = spec.model_class()
    try:
        return cls(**{**spec.release_kwargs, **overrides})
    except TypeError as err:  # unknown keyword: say which ones exist
        params = [p for p in inspect.signature(cls).parameters]
        raise TypeError(f"{err}; {spec.name} accepts: {', '.join(params)}") from err
