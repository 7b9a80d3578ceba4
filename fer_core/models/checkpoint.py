"""Checkpoints: plain tensors and dicts in ``.pt`` files, metadata in JSON beside them.

Loading always uses ``torch.load(weights_only=True)``: a checkpoint is data, and a file
that would run code when unpickled is refused, not trusted.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from fer_core import UsageError, store
from fer_core.models.registry import create_model, model_spec
from fer_core.models.spec import config_tta, trained_spec

FORMAT_VERSION = 1
PACKAGE = "fer-pipeline"


class CheckpointError(UsageError):
    """A checkpoint that cannot be used: refused content, or metadata that does not fit."""


@lru_cache(maxsize=1)
def code_version() -> dict:
    """The package version, the git commit of a source checkout (None when installed
    without git) and a hash of every fer_core source file (names and bytes)."""
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    root = Path(__file__).resolve().parents[1]  # fer_core/
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(store.file_sha256(path).encode() + b"\n")
    return {"fer_core": version, "git_commit": _git_commit(root.parent),
            "source_sha256": h.hexdigest()}


def _git_commit(repo: Path) -> str | None:
    import subprocess

    if not (repo / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def code_label(version: dict) -> str:
    """The code version in one word: the git commit (short), else the package version."""
    commit = version.get("git_commit")
    return f"git:{commit[:12]}" if commit else f"{PACKAGE}=={version.get('fer_core')}"


def cpu_state(module_or_state: nn.Module | dict) -> dict:
    """Detached CPU copies, so a checkpoint loads the same on any device."""
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) \
        else module_or_state
    return {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in state.items()}


def save_pt(path: str | os.PathLike, payload: dict) -> store.Ref:
    with store.atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return store.ref(path)


def safe_load(path: str | os.PathLike) -> dict:
    """``torch.load`` restricted to tensors and plain containers, or a clear refusal."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a page of advice to load it unsafely; keep only the culprit.
        culprit = re.search(r"Unsupported (?:global|operand)[^.]*", str(e))
        raise CheckpointError(
            f"{path}: refused: the file holds pickled objects other than tensors and plain "
            f"containers, and loading it could run arbitrary code"
            f" ({culprit.group(0) if culprit else type(e).__name__})") from None
    except (RuntimeError, EOFError) as e:  # not a torch file, or a truncated one
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({why})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(payload).__name__}")
    return payload


def preprocessing(model_name: str, *, grayscale: bool = False) -> dict:
    """How raw uint8 RGB images must be prepared for the model (caller-facing contract).

    ``grayscale`` and ``work_size`` are applied inside the model (``models.Normalized``):
    recorded here so that a reader knows, and so that ``load_model`` rebuilds them.
    """
    spec = model_spec(model_name)
    return {"image_size": [spec.input_size, spec.input_size], "channels": "RGB",
            "layout": "NCHW float32", "scale": 255,
            "grayscale": {"value": grayscale,
                          "applied": "inside the model: luma 0.299 R + 0.587 G + 0.114 B"},
            "work_size": [spec.work_size, spec.work_size],
            "normalization": {"mean": list(spec.mean), "std": list(spec.std),
                              "applied": "inside the model, after dividing by scale"}}


def is_grayscale(meta: dict) -> bool:
    """The grey conversion a checkpoint's model was trained with (older ones: none)."""
    grey = meta.get("preprocessing", {}).get("grayscale", False)
    return bool(grey["value"] if isinstance(grey, dict) else grey)


def checkpoint_meta(*, model_name: str, classes: tuple[str, ...], config: dict,
                    epoch: int, metrics: dict, grayscale: bool = False,
                    prepared: dict | None = None, lineage: dict | None = None) -> dict:
    """A checkpoint's metadata; ``prepared``: the preparation config of the faces it was
    trained on (prepare.json's ``config``), which its face spec follows; ``lineage``: what
    it learnt from (the sets' content hash, the starting checkpoint's ref and sha256)."""
    spec = model_spec(model_name)
    face = trained_spec(input_size=spec.input_size, grayscale=grayscale, mean=spec.mean,
                        std=spec.std, tta=config_tta(config),
                        prepared=prepared)
    return {"format": FORMAT_VERSION, "model": model_name, "classes": list(classes),
            "num_classes": len(classes),
            "preprocessing": preprocessing(model_name, grayscale=grayscale),
            "face_spec": face.model_dump(mode="json"),
            "config": config, "epoch": epoch, "metrics": metrics,
            "code_version": code_version(), "torch": torch.__version__,
            "lineage": {**(lineage or {}), "code": code_label(code_version())}}


def meta_path(pt_path: str | os.PathLike) -> Path:
    return Path(pt_path).with_suffix(".json")


def save_checkpoint(path: str | os.PathLike, payload: dict, meta: dict) -> store.Ref:
    """``payload`` (must hold ``model``) to ``path``; ``meta`` to the JSON beside it.

    The JSON is written first: a ``.pt`` that exists always has its metadata.
    """
    if "model" not in payload:
        raise UsageError("a checkpoint payload needs a 'model' state_dict")
    store.write_json(meta_path(path), meta)
    return save_pt(path, payload)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """(payload, meta) of a checkpoint written by ``save_checkpoint``."""
    payload = safe_load(path)
    mpath = meta_path(path)
    if not mpath.exists():
        raise CheckpointError(f"{path}: no metadata file {mpath.name} beside it")
    meta = store.read_json(mpath)
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{mpath}: format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    if not isinstance(payload.get("model"), dict):
        raise CheckpointError(f"{path}: no 'model' state_dict in the checkpoint")
    return payload, meta


def load_model(checkpoint_path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """The model saved at ``checkpoint_path`` (best.pt or last.pt), in eval mode, on CPU."""
    payload, meta = load_checkpoint(checkpoint_path)
    model = create_model(meta["model"], num_classes=int(meta["num_classes"]),
                         grayscale=is_grayscale(meta))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{checkpoint_path}: weights do not fit model "
                              f"{meta['model']!r}: {e}") from None
    return model.eval(), meta


def load_weights(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Load a local state_dict (bare, wrapped, or a checkpoint with a ``model`` entry) into
    ``model``; returns the keys skipped for shape. Tensors whose shape differs (e.g. another
    head) are skipped with a warning, any other mismatch is an error."""
    state = safe_load(path)
    if isinstance(state.get("model"), dict):
        state = state["model"]
    own = model.state_dict()
    if not any(k in own for k in state):  # bare backbone weights
        state = {f"backbone.{k}": v for k, v in state.items()}
    skipped = [k for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if skipped:
        warnings.warn(f"{path}: shapes differ, left at initialisation: {skipped}", stacklevel=2)
    state = {k: v for k, v in state.items() if k not in skipped}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in skipped]
    if missing or unexpected:
        raise UsageError(f"{path}: weights do not fit the model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return skipped
