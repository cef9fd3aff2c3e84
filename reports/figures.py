"""The paper's figures from a trained DACode model and test sets (matplotlib; PNG and PDF).

- Fig. 4a, activation fingerprints: per task, the codebook activation averaged over the task's
  test images, one row per task (a tasks × Nc heat map);
- Fig. 4b, the Top-5 primitives per task;
- Fig. 5, severity: the Top-5 primitives of the same clean images at two intensities — σ 15 vs
  50 (the denoising protocol itself), light vs heavy rain (``add_rain`` density/length/strength)
  and light vs heavy haze (``add_haze`` β and airlight); one seed per image for both levels, so
  only the intensity differs;
- Figs. 7–9, the full Nc-primitive distribution per task, Top-5 highlighted;
- Fig. 3, the qualitative grid: per task one test image — degraded input, each method's output,
  ground truth — with each image's PSNR (the run's first metric, on the whole image) under it.

Activations come from :func:`dacode.record_codebook`: the stage-2 attention of every DAC layer,
averaged over pixels and heads (each row sums to 1). The codebook is one global C shared by the
three DAC layers, so primitive #i is the same vector in each; a figure uses the mean over the
layers unless ``layer`` names one. Primitive numbers are 0-based indices into the codebook.
Denoising averages its σ columns (as Fig. 7 does); a composite (CDD-11) column is its own
"task". Every figure carries the profile label in its title.
"""
from __future__ import annotations

import pathlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from harness.errors import HarnessError

TASK_TITLES = {
    "denoise": "Denoising", "derain": "Deraining", "dehaze": "Dehazing", "deblur": "Deblurring",
    "lowlight": "Low-light", "desnow": "Desnowing", "composite": "Composite",
}


@dataclass
class FigureFile:
    name: str  # file stem, e.g. "fig4a_fingerprints"
    title: str
    caption: str
    png: pathlib.Path
    pdf: pathlib.Path


@dataclass
class FigureSet:
    figures: list[FigureFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped and why
    data: dict = field(default_factory=dict)  # the plotted numbers (JSON-serialisable)


def _col(c, key, default=None):
    return c.get(key, default) if isinstance(c, dict) else getattr(c, key, default)


def _mpl_text(text) -> str:
    """Text that matplotlib prints literally ($ would start mathtext)."""
    return str(text).replace("$", r"\$")


# -- numbers ------------------------------------------------------------------------------------


def record_activations(model: torch.nn.Module, images: list[np.ndarray], *, layer: str | None = None,
                       batch: int = 4, device: str | torch.device = "cpu") -> np.ndarray:
    """images (H×W×3 uint8) → images × Nc codebook activations (mean over DAC layers, or ``layer``)."""
    import dacode
    from harness.train import to_tensor

    if not images:
        raise ValueError("record_activations needs at least one image")
    model = model.eval().to(device)
    with dacode.record_codebook(model) as rec, torch.no_grad():
        for group in _same_size_runs(images, batch):  # recorded in call order
            model(to_tensor(np.stack(group)).to(device))
    acts = rec.activations
    if layer is not None:
        if layer not in acts:
            raise HarnessError(f"no DAC layer '{layer}'; layers: {', '.join(acts)}")
        return acts[layer].numpy()
    return torch.stack([acts[name] for name in rec.layers if name in acts]).mean(dim=0).numpy()


def task_groups(columns) -> "OrderedDict[str, list[str]]":
    """Figure rows: task title → column ids (σ columns pooled; each composite column on its own)."""
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for c in columns:
        task = _col(c, "task")
        title = _col(c, "label") if task == "composite" else TASK_TITLES.get(task, task)
        groups.setdefault(title, []).append(_col(c, "id"))
    return groups


def task_activations(model, test_sets, columns, *, max_images: int | None = None, layer: str | None = None,
                     device="cpu") -> "OrderedDict[str, np.ndarray]":
    """Task title → images × Nc activations over the task's test images."""
    by_id = {ts.column_id: ts for ts in test_sets}
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for title, ids in task_groups(columns).items():
        images = [p.degraded for cid in ids if cid in by_id for p in by_id[cid].head(max_images).pairs]
        if images:
            out[title] = record_activations(model, images, layer=layer, device=device)
    return out


def _severity_levels():
    from harness.data import degradations as d

    return {
        "denoise": (("σ = 15", lambda img, rng: d.add_gaussian_noise(img, 15, rng)),
                    ("σ = 50", lambda img, rng: d.add_gaussian_noise(img, 50, rng))),
        "derain": (("light rain", lambda img, rng: d.add_rain(img, rng, density=0.004, length=11, angle_deg=10.0,
                                                              strength=0.6)),
                   ("heavy rain", lambda img, rng: d.add_rain(img, rng, density=0.02, length=21, angle_deg=10.0,
                                                              strength=0.9))),
        "dehaze": (("light haze", lambda img, rng: d.add_haze(img, rng, beta=0.5, airlight=0.8)),
                   ("heavy haze", lambda img, rng: d.add_haze(img, rng, beta=2.5, airlight=0.9))),
    }


SEVERITY_PARAMETERS = {
    "denoise": "σ = 15 vs σ = 50 (the denoising protocol's noise)",
    "derain": "light: density 0.004, streak length 11, strength 0.6; heavy: density 0.02, length 21, strength 0.9",
    "dehaze": "light: β = 0.5, airlight 0.8; heavy: β = 2.5, airlight 0.9",
}


def severity_images(test_sets, columns, *, seed: int = 0, max_images: int | None = None
                    ) -> "OrderedDict[str, list[tuple[str, list[np.ndarray]]]]":
    """Task title → [(level, degraded images)] at two intensities, from the clean images of the
    task's first column (denoising, deraining and dehazing only)."""
    from harness.data.degradations import seed_for

    levels = _severity_levels()
    by_id = {ts.column_id: ts for ts in test_sets}
    out: OrderedDict[str, list] = OrderedDict()
    for c in columns:
        task = _col(c, "task")
        title = TASK_TITLES.get(task, task)
        if task not in levels or title in out or _col(c, "id") not in by_id:
            continue
        pairs = by_id[_col(c, "id")].head(max_images).pairs
        out[title] = []
        for level, make in levels[task]:
            # the same generator state per image at both levels: only the intensity differs
            images = [make(p.clean, np.random.default_rng(seed_for("severity", task, p.image_id, seed))) for p in pairs]
            out[title].append((level, images))
    return out


# -- drawing ------------------------------------------------------------------------------------


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _title(fig, title: str, label: str) -> None:
    """The figure's title and, below it, the profile label wrapped to the figure's width."""
    import textwrap

    chars = max(30, int(fig.get_figwidth() * 12))
    lines = textwrap.wrap(_mpl_text(title), chars) + (textwrap.wrap(f"[{_mpl_text(label)}]", chars) if label else [])
    fig.suptitle("\n".join(lines), fontsize=9)


def save_figure(fig, out_dir: pathlib.Path, stem: str) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.pdf``, without time stamps (same input → same bytes)."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"
    fig.savefig(png, dpi=150, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    return png, pdf


def plot_fingerprints(acts: "OrderedDict[str, np.ndarray]", label: str = ""):
    """Fig. 4a: tasks × Nc heat map of the image-averaged activation."""
    titles = list(acts)
    matrix = np.stack([acts[t].mean(axis=0) for t in titles])
    nc = matrix.shape[1]
    fig = _new_figure(max(6.0, min(14.0, 0.16 * nc + 2)), 1.2 + 0.45 * len(titles))
    ax = fig.add_subplot()
    im = ax.imshow(matrix, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(titles)), [_mpl_text(t) for t in titles])
    step = max(1, nc // 16)
    ax.set_xticks(range(0, nc, step), [f"#{i}" for i in range(0, nc, step)], fontsize=7)
    ax.set_xlabel("code primitive")
    fig.colorbar(im, ax=ax, label="mean activation", shrink=0.9)
    _title(fig, "Codebook activation fingerprints per task", label)
    return fig


def _bars(ax, weights, indices, color="#3b6ea5", highlight: set[int] | None = None) -> None:
    colors = [("#d1495b" if highlight is not None and int(i) not in highlight else color) for i in indices]
    ax.bar(range(len(indices)), weights, color=colors)
    ax.set_xticks(range(len(indices)), [f"#{int(i)}" for i in indices], fontsize=8)
    for x, w in enumerate(weights):
        ax.text(x, w, f"{w:.3f}", ha="center", va="bottom", fontsize=6)


def topk(vec: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import dacode

    w, i = dacode.topk_primitives(torch.as_tensor(vec), min(k, len(vec)))
    return w.numpy(), i.numpy()


def plot_topk(acts: "OrderedDict[str, np.ndarray]", k: int = 5, label: str = ""):
    """Fig. 4b: the Top-k primitives of each task."""
    titles = list(acts)
    n_cols = min(4, len(titles))
    n_rows = -(-len(titles) // n_cols)
    fig = _new_figure(max(6.0, 2.6 * n_cols), 0.5 + 2.4 * n_rows)
    grid = fig.subplots(n_rows, n_cols, sharey=True, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax, title in zip(axes, titles):
        w, i = topk(acts[title].mean(axis=0), k)
        _bars(ax, w, i)
        ax.set_title(_mpl_text(title), fontsize=9)
    for ax in axes[len(titles):]:
        ax.set_axis_off()
    for row in grid:
        row[0].set_ylabel("mean activation")
    _title(fig, f"Top-{k} primitives per task", label)
    return fig


def plot_severity(sev: "OrderedDict[str, list[tuple[str, np.ndarray]]]", k: int = 5, label: str = ""):
    """Fig. 5: per task, the Top-k primitives at two intensities; a primitive in only one of the
    two Top-k sets is drawn in red."""
    tasks = list(sev)
    fig = _new_figure(7.0, 0.6 + 2.2 * len(tasks))
    axes = fig.subplots(len(tasks), 2, squeeze=False, sharey="row")
    for r, task in enumerate(tasks):
        tops = [topk(acts.mean(axis=0), k) for _, acts in sev[task]]
        sets = [set(int(x) for x in i) for _, i in tops]
        for c, ((level, _), (w, i)) in enumerate(zip(sev[task], tops)):
            _bars(axes[r][c], w, i, highlight=sets[1 - c] if len(sets) == 2 else None)
            axes[r][c].set_title(f"{_mpl_text(task)}: {_mpl_text(level)}", fontsize=9)
        axes[r][0].set_ylabel("mean activation")
    _title(fig, f"Severity-aware activation (Top-{k}; red: not in the other level's Top-{k})", label)
    return fig


def plot_full(vec: np.ndarray, task: str, k: int = 5, label: str = "", n_images: int | None = None):
    """Figs. 7–9: every primitive's mean activation for one task, Top-k highlighted and numbered."""
    nc = len(vec)
    w, idx = topk(vec, k)
    fig = _new_figure(max(6.0, min(14.0, 0.14 * nc + 2)), 3.0)
    ax = fig.add_subplot()
    colors = ["#d1495b" if i in set(int(x) for x in idx) else "#8aa9c9" for i in range(nc)]
    ax.bar(range(nc), vec, color=colors, width=0.85)
    for i, v in zip(idx, w):
        ax.text(int(i), float(v), f"#{int(i)}", ha="center", va="bottom", fontsize=7)
    step = max(1, nc // 16)
    ax.set_xticks(range(0, nc, step), [f"#{i}" for i in range(0, nc, step)], fontsize=7)
    ax.set_xlim(-0.6, nc - 0.4)
    ax.set_xlabel("code primitive")
    ax.set_ylabel("mean activation")
    n = f", {n_images} images" if n_images else ""
    _title(fig, f"All {nc} code primitives: {task}{n} (Top-{k} in red)", label)
    return fig


def _crop(img: np.ndarray, crop: int | None) -> np.ndarray:
    if not crop:
        return img
    h, w = img.shape[:2]
    s = min(crop, h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[top : top + s, left : left + s]


@dataclass
class QualitativeRow:
    title: str  # e.g. "Deraining (Rain100L, coffee)"
    tiles: list[tuple[str, np.ndarray, str]]  # (column title, H×W×3 uint8 or float in [0, 1], text under it)


def plot_qualitative(rows: list[QualitativeRow], label: str = "", crop: int | None = None):
    """Fig. 3: one row per task — degraded, each method, ground truth — with the text under each tile."""
    n_cols = max(len(r.tiles) for r in rows)
    fig = _new_figure(1.7 * n_cols + 0.6, 1.95 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(row.tiles):
                ax.set_axis_off()
                continue
            head, img, under = row.tiles[c]
            img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else np.clip(img, 0.0, 1.0)
            ax.imshow(_crop(img, crop), interpolation="nearest")
            if r == 0:
                ax.set_title(_mpl_text(head), fontsize=8)
            ax.set_xlabel(_mpl_text(under), fontsize=7)
        axes[r][0].set_ylabel(_mpl_text(row.title), fontsize=8)
    _title(fig, "Qualitative comparison", label)
    return fig


# -- one call from a model and test sets --------------------------------------------------------


def restore(model: torch.nn.Module, images: list[np.ndarray], device="cpu", batch: int = 4,
            policy=None) -> list[np.ndarray]:
    """A method's outputs, H×W×3 float32 in [0, 1] (clipped as the harness scores them), restored
    under the run's inference policy (whole images by default) as evaluation restores them."""
    from harness.evaluate import EvalLog
    from harness.evaluate import restore as restore_batch
    from harness.suite import InferencePolicy
    from harness.train import to_tensor

    policy = policy or InferencePolicy()
    model = model.eval().to(device)
    out: list[np.ndarray] = []
    for group in _same_size_runs(images, batch):
        y = restore_batch(model, to_tensor(np.stack(group)).to(device), policy, EvalLog(), "figures")
        out += list(y.float().clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy())
    return out


def _same_size_runs(images: list[np.ndarray], batch: int) -> list[list[np.ndarray]]:
    """Consecutive images of one size, at most ``batch`` per run (order kept)."""
    runs: list[list[np.ndarray]] = []
    for img in images:
        if runs and len(runs[-1]) < batch and runs[-1][0].shape == img.shape:
            runs[-1].append(img)
        else:
            runs.append([img])
    return runs


def _psnr(metric: str, img: np.ndarray, clean: np.ndarray) -> float:
    from harness.metrics import score

    def t(a):
        a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]

    return float(score(metric, t(img), t(clean))[0])


def qualitative_columns(columns, composites: int = 3) -> list:
    """The columns of Fig. 3: the first of each task (for denoising, the largest σ) and, as Fig. 10
    does for CDD-11, the ``composites`` composite columns with the most parts."""
    chosen: OrderedDict = OrderedDict()
    mixed = [c for c in columns if _col(c, "task") == "composite"]
    mixed = sorted(mixed, key=lambda c: -len((_col(c, "parts") or "").split("_")))[:composites]
    for c in columns:
        if _col(c, "task") == "composite":
            if any(c is m for m in mixed):
                chosen[_col(c, "id")] = c
            continue
        key = _col(c, "task")
        old = chosen.get(key)
        if old is None or (key == "denoise" and (_col(c, "sigma") or 0) > (_col(old, "sigma") or 0)):
            chosen[key] = c
    return list(chosen.values())


def qualitative_rows(test_sets, columns, restored: dict[str, dict[str, dict[str, np.ndarray]]], *,
                     metric: str = "psnr_y", image_ids: dict[str, str] | None = None) -> list[QualitativeRow]:
    """Rows of Fig. 3. ``restored[method][column id][image id]`` holds each method's output."""
    from harness.metrics import get_protocol

    display = get_protocol(metric).display
    by_id = {ts.column_id: ts for ts in test_sets}
    rows = []
    for c in qualitative_columns(columns):
        ts = by_id.get(_col(c, "id"))
        if ts is None or not len(ts):
            continue
        wanted = (image_ids or {}).get(ts.column_id)
        pair = next((i for i in ts.items if i.image_id == wanted), ts.items[0]).load()
        tiles = [("Degraded", pair.degraded, f"{display} {_psnr(metric, pair.degraded, pair.clean):.2f} dB")]
        for method, per_column in restored.items():
            img = per_column.get(ts.column_id, {}).get(pair.image_id)
            if img is not None:
                tiles.append((method, img, f"{display} {_psnr(metric, img, pair.clean):.2f} dB"))
        tiles.append(("Ground truth", pair.clean, f"{display} (reference)"))
        task = _col(c, "label") if _col(c, "task") == "composite" else TASK_TITLES.get(_col(c, "task"), _col(c, "task"))
        rows.append(QualitativeRow(f"{task}\n{_col(c, 'label')}, {pair.image_id}", tiles))
    return rows


def make_figures(model: torch.nn.Module | None, test_sets, columns, out_dir: str | pathlib.Path, *,
                 label: str = "", restored: dict | None = None, metric: str = "psnr_y", seed: int = 0,
                 k: int = 5, max_images: int | None = None, layer: str | None = None, device="cpu",
                 crop: int | None = None) -> FigureSet:
    """Every figure for one DACode ``model`` (codebook figures) and, given ``restored`` outputs per
    method, the qualitative grid; PNG and PDF under ``out_dir``.

    ``test_sets``: :class:`harness.data.TestSet` per column; ``columns``: the suite's columns (or the
    results document's ``columns``) for their task, σ and label. ``model`` may be None (grid only).
    """
    out_dir = pathlib.Path(out_dir)
    result = FigureSet()

    def emit(fig, stem, title, caption):
        png, pdf = save_figure(fig, out_dir, stem)
        result.figures.append(FigureFile(stem, title, caption, png, pdf))

    if restored:
        rows = qualitative_rows(test_sets, columns, restored, metric=metric)
        if rows:
            emit(plot_qualitative(rows, label, crop), "fig3_qualitative", "Qualitative comparison (Fig. 3)",
                 "Per task one test image: the degraded input, each method's output and the ground truth, "
                 f"with each image's {metric} on the whole image under it.")
    if model is None:
        return result
    acts = task_activations(model, test_sets, columns, max_images=max_images, layer=layer, device=device)
    if not acts:
        result.notes.append("no test images: codebook figures skipped")
        return result
    nc = next(iter(acts.values())).shape[1]
    counts = {t: int(a.shape[0]) for t, a in acts.items()}
    where = f"layer {layer}" if layer else "mean over the DAC layers"
    result.data["activations"] = {t: a.mean(axis=0).round(6).tolist() for t, a in acts.items()}
    result.data["images"] = counts
    emit(plot_fingerprints(acts, label), "fig4a_fingerprints", "Activation fingerprints (Fig. 4a)",
         f"Stage-2 codebook activation per task ({where}), averaged over the task's test images "
         f"({', '.join(f'{t}: {n}' for t, n in counts.items())}); Nc = {nc}.")
    emit(plot_topk(acts, k, label), "fig4b_top5", f"Top-{k} primitives per task (Fig. 4b)",
         f"The {k} most activated primitives of each task ({where}).")
    sev_images = severity_images(test_sets, columns, seed=seed, max_images=max_images)
    if sev_images:
        sev = OrderedDict((task, [(level, record_activations(model, imgs, layer=layer, device=device))
                                  for level, imgs in levels]) for task, levels in sev_images.items())
        result.data["severity"] = {t: {lv: a.mean(axis=0).round(6).tolist() for lv, a in levels}
                                   for t, levels in sev.items()}
        params = "; ".join(f"{TASK_TITLES[t]}: {p}" for t, p in SEVERITY_PARAMETERS.items()
                           if TASK_TITLES[t] in sev)
        emit(plot_severity(sev, k, label), "fig5_severity", "Severity-aware activation (Fig. 5)",
             f"Top-{k} primitives of the same clean test images at two intensities ({params}).")
    else:
        result.notes.append("no denoising, deraining or dehazing column: the severity figure (Fig. 5) is skipped")
    for n, (task, a) in enumerate(acts.items()):
        stem = "fig7_9_full_" + "".join(ch if ch.isalnum() else "_" for ch in task.lower()).strip("_")
        emit(plot_full(a.mean(axis=0), task, k, label, a.shape[0]), stem, f"All primitives: {task} (Figs. 7–9)",
             f"Mean activation of all {nc} primitives for {task} ({where}); Top-{k} in red.")
    return result


# -- from a stored run --------------------------------------------------------------------------


def figures_for_run(doc, run_dir: str | pathlib.Path, out_dir: str | pathlib.Path, *, data_root=None,
                    max_images: int | None = None, codebook_method: str | None = None,
                    device: str = "cpu", log=lambda *a: None) -> FigureSet:
    """Rebuild the run's models through the model provider (a checkpoint or the weights trained for
    the run, never training), prepare its test sets and draw every figure. ``doc``: the run's
    :class:`harness.results.RunResults`; its stored suite says how each row was built."""
    from harness import provider
    from harness.data.images import IMAGE_SUFFIXES, read_rgb
    from harness.data.sources import prepare
    from harness.store import ResultsDB, results_root_of
    from harness.suite import InferencePolicy

    run_dir = pathlib.Path(run_dir)
    result = FigureSet()
    suite = doc.suite_model()
    profile = doc.profile
    policy = InferencePolicy.model_validate(doc.inference.get("policy") or {})
    entries = {m.name: m for m in suite.methods}
    log(f"figures: preparing the {profile} test sets")
    try:
        prepared = prepare(suite, profile, pathlib.Path(data_root).expanduser() if data_root else None,
                           doc.seed, need_training=False)
    except HarnessError as exc:
        first = str(exc).splitlines()[0]
        result.notes.append(f"figures skipped: the test images are needed ({first}); pass --data-root")
        return result
    test_sets = [t.head(max_images) for t in prepared.test_sets]
    db = ResultsDB(results_root_of(run_dir))
    ctx = provider.RowContext(suite, profile, None, suite.profiles[profile].train, 0, doc.seed, db, {},
                              device=device, log=log)

    def build(mresult):
        entry = entries.get(mresult.name)
        if entry is None:
            result.notes.append(f"'{mresult.name}' is not a row of suite '{suite.name}': left out of the figures")
            return None, None
        if entry.outputs:
            return entry, None
        if mresult.checkpoint and not entry.checkpoint:  # loaded with --checkpoints in that run
            entry = entry.model_copy(update={"checkpoint": mresult.checkpoint})
        model = provider.load_for_report(entry, mresult.method_key, ctx)
        if model is None:
            result.notes.append(f"no trained weights for '{mresult.name}' under {db.models_dir}: left out of the "
                                "figures")
            return entry, False
        return entry, model

    restored: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    codebook_models = []
    chosen = {c.id for c in qualitative_columns(suite.columns)}
    try:
        for mresult in doc.methods:
            entry, model = build(mresult)
            if entry is None or model is False:
                continue
            per_column: dict[str, dict[str, np.ndarray]] = {}
            for ts in test_sets:
                if ts.column_id not in chosen or not len(ts):
                    continue
                pair = ts.items[0].load()
                if model is None:  # an outputs folder
                    folder = pathlib.Path(entry.outputs).expanduser() / ts.column_id
                    found = [p for p in folder.glob(f"{pair.image_id}.*") if p.suffix.lower() in IMAGE_SUFFIXES]
                    if found:
                        per_column[ts.column_id] = {pair.image_id: read_rgb(found[0])}
                else:
                    per_column[ts.column_id] = {pair.image_id: restore(model, [pair.degraded], device,
                                                                       policy=policy)[0]}
            restored[mresult.name] = per_column
            if model is not None and getattr(model, "records_codebook", False):  # the model says it can
                codebook_models.append((0 if codebook_method == mresult.name else 1, mresult.name, model))
    finally:
        db.close()
    if codebook_method and codebook_method not in [n for _, n, _ in codebook_models]:
        raise HarnessError(f"--codebook-method '{codebook_method}' is not a row whose model records a codebook in "
                           f"this run; rows: {', '.join(n for _, n, _ in codebook_models) or '(none)'}")
    # the row asked for, else the table's last codebook row (the paper lists its own method last)
    named = [t for t in codebook_models if t[0] == 0]
    best = named[0] if named else (codebook_models[-1] if codebook_models else None)
    model, name = (best[2], best[1]) if best else (None, None)
    if model is None:
        result.notes.append("no row whose model records a codebook (with its weights) in this run: codebook "
                            "figures skipped")
    log(f"figures: drawing ({'codebook of ' + name if name else 'no codebook'}; {len(restored)} methods in the grid)")
    made = make_figures(model, test_sets, suite.columns, out_dir, label=doc.profile_label, restored=restored,
                        metric=doc.metrics[0], seed=doc.seed, device=device)
    result.figures += made.figures
    result.notes += made.notes
    result.data = {**made.data, "codebook_method": name}
    return result
