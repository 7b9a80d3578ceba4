"""The model card of the shipped FER+ model (docs/MODEL_CARD_FERPLUS.md), written by
bench/ship_model.py from the result JSON bench/train_ferplus.py recorded, and from its
majority-label twin's when there is one. Every figure comes from those files; the prose
(limits, terms) is this template."""

from __future__ import annotations

# What each label mode trains on (bench/configs/ferplus.yaml, fer_core.config.train).
MODES = {"crossentropy": "cross-entropy on the vote distribution itself (soft targets)",
         "probability": "a one-hot target drawn from the face's vote distribution each time "
                        "the face is seen",
         "majority": "the one-hot majority label"}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _score_row(what: str, result: dict, split: str) -> str:
    s, left_out = result["scores"][split], result["excluded"].get(split) or {}
    return (f"| {what} | `{result['label_mode']}` | {s['n']:,} | "
            f"{sum(left_out.values()):,} | {_pct(s['accuracy'])} | {s['macro_f1']:.4f} |")


def _excluded(left_out: dict | None) -> str:
    if not left_out:
        return "none"
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(left_out.items()))


def _cost(result: dict) -> str:
    train, machine = result["train"], result["machine"]
    other = train.get("cpu", {}).get("other_processes_cpu_share")
    busy = "" if other is None else f" (other processes took {100 * other:.1f}% of the CPUs)"
    return (f"{train['wall_seconds'] / 60:.1f} minutes of training in {train['chunks']} "
            f"chunk(s) (preparation {result['prepare']['wall_seconds'] / 60:.1f} minutes) on "
            f"{machine.get('cpu_count')} CPU cores ({machine.get('cpu')}), peak RSS "
            f"{round(train['peak_rss_mib']):,} MiB{busy}")


def card(result: dict, meta: dict, *, name: str, weights_bytes: int,
         twin: dict | None) -> str:
    """``result``: train_ferplus_<mode>.json (with ``_source``, its path as shown);
    ``meta``: the shipped checkpoint's metadata; ``twin``: the same recipe with
    ``label_mode: majority`` (with ``_source``), or None."""
    scores, cfg, pre = result["scores"], result["config"], meta["preprocessing"]
    classes, test = meta["classes"], scores["test"]
    results = ["| split | label mode | faces scored | faces left out | accuracy | macro-F1 |",
               "|---|---|---:|---:|---:|---:|",
               _score_row("`test` (PrivateTest)", result, "test")]
    if twin is not None:
        results.append(_score_row("`test` (PrivateTest), majority twin", twin, "test"))
    if "val" in scores:
        results.append(_score_row("`val` (PublicTest, used for selection)", result, "val"))
    heads = [("this model", result)] + ([("majority twin", twin)] if twin else [])
    per_class = ["| class | test faces | " + " | ".join(f"F1 {h}" for h, _ in heads) + " |",
                 "|---|---:|" + "---:|" * len(heads)]
    support = result.get("support", {}).get("test", {})
    for c in classes:
        n = f"{support[c]:,}" if c in support else "?"
        per_class.append(f"| {c} | {n} | " + " | ".join(
            f"{r['scores']['test']['per_class_f1'][c]:.3f}" for _, r in heads) + " |")
    # The two rarest classes by training faces (FER+: Contempt and Disgust), with counts.
    train_counts = (result.get("split_counts") or {}).get("train", {})
    rare = sorted(classes, key=lambda c: (train_counts.get(c, support.get(c, 0)), c))[:2]
    rare_text = " and ".join(rare) + " are rare (" + "; ".join(
        (f"{train_counts[c]:,} training faces, " if c in train_counts else "")
        + f"{support.get(c, 0):,} test faces" for c in rare) + ")"
    weakest = min(classes, key=lambda c: test["per_class_f1"][c])
    smoke = (f"\n**A smoke run on a subset ({result['subset_per_class']} files per FER2013 "
             "folder): not the model issue 31 asks for.**\n"
             if result.get("subset_per_class") else "")
    twin_text = "" if twin is None else (
        f"\n- **Majority twin** (`{twin['_source']}`): the same recipe with `label_mode: "
        f"majority`, {twin['config']['epochs']} epochs; {_cost(twin)}:\n\n"
        f"      {twin['train_command']}\n")
    passed = result.get("pass")
    targets = "" if not passed else "\nIssue 31's targets: " + ", ".join(
        f"{k} {'met' if ok else 'NOT met'}" for k, ok in passed.items()) + \
        f" (`{result['_source']}`, `targets`).\n"
    return f"""# Model card: `{name}` (`--model ferplus`)

*Written by `bench/ship_model.py` from `{result['_source']}`; do not edit the figures by hand.*
{smoke}
## What it is
- **Task**: facial expression classification of one face crop into FER+'s {len(classes)}
  classes:
  {', '.join(classes)}.
- **Use**: `--model ferplus` (`fer predict`, `fer serve`, `fer evaluate`, `fer export`);
  the default stays the FER2013 model (7 classes).
- **Architecture**: `{meta['model']}` from `fer_core/models/registry.py`, trained from
  scratch; {weights_bytes / 2**20:.1f} MB of float32 weights
  (`fer_core/models/weights/{name}.pt`, a plain state_dict that loads with
  `weights_only=True`).
- **Input**: a face crop as uint8 RGB at {pre['image_size'][0]}x{pre['image_size'][1]},
  divided by 255. Inside the model: grey conversion (`grayscale = {pre['grayscale']['value']}`),
  an antialiased resize to {pre['work_size'][0]}x{pre['work_size'][1]}, then mean/std
  normalisation; every door applies the checkpoint's face spec and its mirror test-time
  augmentation ({cfg.get('hflip_tta')}).

## Training data and procedure
- **Data**: FER2013's faces (Goodfellow et al., 2013) with the FER+ labels (Barsoum et al.,
  2016): ten crowd votes per face. FER+'s splits as given: Training for training, PublicTest
  for model selection, PrivateTest for the test.
- **Preparation**:

      {result['prepare_command']}

- **Training** (`{result['config_file']}` with `label_mode: {result['label_mode']}`:
  {MODES.get(result['label_mode'], result['label_mode'])}):

      {result['train_command']}

  {cfg['epochs']} epochs of {cfg['optimizer'].upper()} ({cfg['schedule']} schedule, peak lr
  {cfg['lr']}), batch {cfg['batch_size']}, class weights from the majority labels
  ({cfg['class_weights']}), bf16 on the CPU ({cfg['cpu_amp']}). Best epoch on validation
  macro-F1: {result.get('best_epoch')}.
- **Cost**: {_cost(result)}.
- **Benchmark command**: `{result['command']}`.{twin_text}

## Results (as FER+ reports them: majority labels, {len(classes)} classes)
{chr(10).join(results)}

Faces of `test` left out for want of a majority label, by reason:
{_excluded(result['excluded'].get('test'))}.
For reference, the FER+ paper's VGG13 from scratch: about 84-85% on PrivateTest with
probability drawing or cross-entropy on the distribution, about 84% with majority voting.
{targets}
Per-class F1 on `test`:

{chr(10).join(per_class)}

Training curves and confusion matrices: {', '.join(f'`{f}`' for f in result['figures'])}.

## Known limits
- FER2013's faces: grey, 48x48 web images, mostly frontal; accuracy drops on profile faces,
  heavy occlusion, children and other capture conditions. Colour faces are turned grey first.
- FER+ labels are crowd votes: a face without a majority (or voted unknown / not a face) is
  in no test figure above, and the majority label of an ambiguous face is still one opinion
  among ten. The weakest class is {weakest} (test F1 {test['per_class_f1'][weakest]:.3f}).
- {rare_text}: their figures rest on few faces and move a lot between
  runs.
- One face crop at a time. Not for decisions about people (hiring, policing, health):
  expression is not emotion, and the data's demographics are unknown.

## Terms
FER2013 is research data (the ICML 2013 representation-learning challenge) and the FER+
votes are Microsoft's FERPlus labels (MIT licence); these weights are derived from both and
are for research use under FER2013's terms. The images are not in this repository.
"""
