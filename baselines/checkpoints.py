"""Loading the officially released baseline checkpoints, without Lightning or mmcv.

Formats (docs/models/promptir.md#released-checkpoint and docs/models/airnet.md#checkpoint-files;
specs/*_state_dict.json):

* PromptIR ``model.ckpt``: a Lightning checkpoint, a dict whose ``state_dict``
  maps ``"net." + <PromptIR(decoder=True) key>`` to tensors (548 keys); the
  other entries (epoch, optimizer states, callbacks, ...) are ignored.
* AirNet ``All.pth``: a plain ``state_dict`` (584 entries incl. BN buffers and
  the MoCo queue).  The queue length depends on the file (All 1280, Denoise 768,
  Derain/Dehaze 256), so it is read from ``E.E.queue``.

Files are read with ``torch.load(weights_only=True)``; a file that needs
arbitrary unpickling is refused unless the caller passes ``trust_pickle=True``.
Loading is strict: any missing, unexpected or mis-shaped key raises
:class:`CheckpointMismatchError` before the weights are copied.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any, Dict, List, Tuple

import torch
from torch import Tensor, nn

__all__ = ["CheckpointMismatchError", "CheckpointReadError", "UnsafeCheckpointError", "load_checkpoint", "read_checkpoint",
           "state_dict_of"]


class CheckpointMismatchError(ValueError):
    """The file's keys or shapes differ from the release the loader expects."""

    def __init__(self, message: str, missing: List[str], unexpected: List[str],
                 mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]]):
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched  # (key, shape in file, expected shape)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file needs arbitrary unpickling and the caller did not declare it trusted."""


class CheckpointReadError(ValueError):
    """The file is not a readable checkpoint (missing, a folder, truncated, or not a checkpoint at all)."""


_SHOW = 5  # keys listed per category in the error message


def _needs_globals(err: Exception) -> bool:
    """A well-formed pickle that only fails because it names classes weights_only does not allow."""
    return isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err)


def read_checkpoint(path: str | os.PathLike, trust_pickle: bool = False) -> Any:
    """The object stored in a ``.safetensors`` file or a torch file, read safely.

    torch files are read with ``weights_only=True``. Only a well-formed pickle that needs extra
    globals is answered with :class:`UnsafeCheckpointError` (set ``trust_pickle`` to load it);
    a file that cannot be read at all — truncated, a text file, a folder — raises
    :class:`CheckpointReadError`, since unpickling it fully would not help.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointReadError(f"checkpoint '{path}' is a directory; give the weights file inside it")
    if not os.path.isfile(path):
        raise CheckpointReadError(f"checkpoint '{path}' does not exist")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as err:  # SafetensorError has no importable base class
            raise CheckpointReadError(f"checkpoint '{path}' is not a readable .safetensors file ({err}); "
                                      "is it truncated? Download or save it again") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if _needs_globals(err):
            if not trust_pickle:
                raise UnsafeCheckpointError(
                    f"refusing to load '{path}': it is a pickle that names classes beyond tensors"
                    f"{_why(err)}, and unpickling them can run code from the file. If you trust this file, "
                    "set trust_pickle: true on its row (or pass trust_pickle=True)"
                ) from None
        else:
            reason = str(err).splitlines()[0][:160] if str(err).strip() else type(err).__name__
            raise CheckpointReadError(
                f"checkpoint '{path}' cannot be read as a torch checkpoint ({reason}); it is truncated or not a "
                "checkpoint: download or save it again"
            ) from None
    return torch.load(path, map_location="cpu", weights_only=False)


def _why(err: Exception) -> str:
    """The disallowed global named by torch's weights_only error."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    detail = next((ln for ln in lines if "Unsupported global" in ln), "")
    return f" ({detail.split(' was not an allowed')[0].replace('WeightsUnpickler error: ', '')})" if detail else ""


def state_dict_of(obj: Any, path: str) -> Dict[str, Tensor]:
    """The tensors of a checkpoint object: a state dict, or a Lightning-style dict holding one."""
    if not isinstance(obj, Mapping):
        raise CheckpointMismatchError(f"{path!r} holds a {type(obj).__name__}, not a state_dict", [], [], [])
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):  # Lightning and similar wrappers
        obj = obj["state_dict"]
    return {str(k): v for k, v in obj.items()}


def _strip(sd: Dict[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    if not prefix:
        return sd
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in sd.items()}


def _compare(name: str, release: str, path: str, sd: Dict[str, Any], expected: Dict[str, Tensor]) -> None:
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = []
    for k, ref in expected.items():
        v = sd.get(k)
        if v is None:
            continue
        shape = tuple(v.shape) if isinstance(v, Tensor) else None
        if shape != tuple(ref.shape):
            mismatched.append((k, shape, tuple(ref.shape)))
    if not (missing or unexpected or mismatched):
        return

    def show(items: List[str]) -> str:
        more = f", ... ({len(items) - _SHOW} more)" if len(items) > _SHOW else ""
        return ", ".join(items[:_SHOW]) + more

    lines = [f"checkpoint {path!r} does not match the release expected by load_checkpoint({name!r}): "
             f"{release}."]
    if missing:
        lines.append(f"  {len(missing)} missing keys: {show(missing)}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected keys: {show(unexpected)}")
    if mismatched:
        shown = [f"{k} (file {'not a tensor' if s is None else list(s)}, expected {list(e)})"
                 for k, s, e in mismatched]
        lines.append(f"  {len(mismatched)} mis-shaped keys: {show(shown)}")
    raise CheckpointMismatchError("\n".join(lines), missing, unexpected, mismatched)


def load_checkpoint(name: str, path: str | os.PathLike, *, trust_pickle: bool = False) -> nn.Module:
    """Build baseline ``name`` and load the released checkpoint at ``path`` strictly; eval mode."""
    from baselines import create_model, get_spec

    spec = get_spec(name)
    path = os.fspath(path)
    sd = _strip(state_dict_of(read_checkpoint(path, trust_pickle), path), spec.checkpoint_prefix)
    overrides = spec.from_file(sd)
    # Compare against a parameter-free skeleton first: a wrong file fails fast.
    with torch.device("meta"):
        skeleton = create_model(spec.name, **overrides)
    _compare(spec.name, spec.release, path, sd, skeleton.state_dict())
    model = create_model(spec.name, **overrides)
    model.load_state_dict(sd, strict=True)
    return model.eval()
