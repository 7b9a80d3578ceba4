"""Ship a benchmarked model as the package's default: copy the run's best checkpoint into
fer_core/models/weights/ and write docs/MODEL_CARD.md from the benchmark's own result file.

    python bench/ship_model.py bench/results/train_cpu_30min.json \
        --prepare-command "fer prepare fer2013/ --out RUN --class-map fer2013 \
--subset test_private=fer2013/test_private.txt"

Every figure in the card comes from the result JSON that bench/train_fer2013.py wrote
(never typed by hand); the card's prose (limits, terms) is this script's template.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.measure import shown_command  # noqa: E402
from fer_core import store  # noqa: E402
from fer_core.models.checkpoint import is_grayscale, load_checkpoint, preprocessing  # noqa: E402
from fer_core.train.loop import _grey_faces  # noqa: E402

WEIGHTS = REPO / "fer_core" / "models" / "weights"
CARD = REPO / "docs" / "MODEL_CARD.md"
NAME = "fer2013_vgg_faces"
MAX_BYTES = 10 * 2**20  # what the repository takes


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def card(result: dict, meta: dict, prepare_command: str, weights: Path) -> str:
    scores, run = result["scores"], result["run"]
    classes = meta["classes"]
    rows = ["| split | images | accuracy | macro-F1 |", "|---|---:|---:|---:|"]
    for split in ("test", "test_private", "val"):
        if split in scores:
            s = scores[split]
            rows.append(f"| `{split}` | {s['n']:,} | {_pct(s['accuracy'])} | "
                        f"{s['macro_f1']:.4f} |")
    head = [s for s in ("test", "test_private") if s in scores]
    per_class = ["| class | " + " | ".join(f"F1 `{s}`" for s in head) + " |",
                 "|---|" + "---:|" * len(head)]
    for c in classes:
        per_class.append(f"| {c} | " + " | ".join(f"{scores[s]['per_class_f1'][c]:.3f}"
                                                   for s in head) + " |")
    cfg, pre = result["config"], meta["preprocessing"]
    note = f"; {meta['preprocessing_note']}" if "preprocessing_note" in meta else ""
    work = pre["work_size"][0]
    weakest = min(classes, key=lambda c: scores["test"]["per_class_f1"][c])
    machine = result["machine"]
    return f"""# Model card: `{NAME}` (the default model of `fer predict`)

*Written by `bench/ship_model.py` from `{result['_source']}`; do not edit the figures by hand.*

## What it is
- **Task**: facial expression classification of one face crop into {len(classes)} classes:
  {', '.join(classes)}.
- **Architecture**: `{meta['model']}` from `fer_core/models/registry.py` (VGG-style CNN with
  BatchNorm, four stages of two 3x3 convolutions, 32 to 256 channels, global average pooling),
  trained from scratch; {weights.stat().st_size / 2**20:.1f} MB of float32 weights
  (`fer_core/models/weights/{NAME}.pt`, a plain state_dict that loads with `weights_only=True`).
- **Input**: a face crop as uint8 RGB at {pre['image_size'][0]}x{pre['image_size'][1]} (the size
  `fer prepare` saves), divided by 255. Inside the model: grey conversion
  (`grayscale = {pre['grayscale']['value']}`: luma 0.299 R + 0.587 G + 0.114 B, because it
  learnt from grey faces{note}), an antialiased resize to {work}x{work},
  then mean/std normalisation. `fer predict`, `fer evaluate` and `fer export` all go through
  the same module, so they cannot disagree. Faces in photos are found with MTCNN, cut as
  `fer predict` documents, eye-aligned and resized as in training.

## Training data and procedure
- **Data**: FER2013 (Goodfellow et al., 2013): 48x48 grey faces from web image search. The
  `train/` folder ({result['splits'].get('train', '?'):,} images after the paper's
  class-balancing noise augmentation) was split 80/20 (stratified, seed 0) into training and
  validation; `test/` (PublicTest + PrivateTest) was held out whole.
- **Preparation** (the paper's, sections 4-5: SHA-1 deduplication, label conflicts resolved
  in favour of the held-out test copy, MTCNN eye alignment, 96x96, class-balancing noise):

      {prepare_command}

- **Training** (`bench/configs/{Path(result['config_file']).name}`; the exact command, run by
  `bench/train_fer2013.py`):

      {run['command']}

  {cfg['epochs']} epochs of {cfg['optimizer'].upper()} with a one-cycle schedule (peak lr
  {cfg['lr']}), batch {cfg['batch_size']}, label smoothing {cfg['label_smoothing']},
  class-weighted cross-entropy ({cfg['class_weights']}), random shift/zoom/rotation/mirror on
  the fly, bf16 on the CPU ({cfg['cpu_amp']}), mirror test-time augmentation
  ({cfg['hflip_tta']}). Model selection on validation macro-F1 (best epoch
  {result.get('best_epoch')}).
- **Cost**: {result['wall_seconds'] / 60:.1f} minutes of wall time for training plus
  evaluation on {machine.get('cpu_count')} CPU cores ({machine.get('cpu')}), peak RSS
  {round(result['peak_rss_mib']):,} MiB, on an otherwise idle machine (other processes took
  {100 * run['cpu']['other_processes_cpu_share']:.1f}% of the CPUs).

## Results (float32, with the mirror test-time augmentation)
{chr(10).join(rows)}

`test` is all of FER2013's test folder (PublicTest + PrivateTest); `test_private` is the
PrivateTest half listed in `fer2013/test_private.txt`, on which most papers report.
For reference (PrivateTest): mini-Xception 66%, the `fer` package's model 65.6%, VGG from
scratch 72.7%, the best from-scratch result 73.28% (300 epochs on a GPU).

Per-class F1:

{chr(10).join(per_class)}

Training curves and confusion matrices: `bench/results/{result['name']}/`.

## Known limits
- FER2013's labels are noisy (FER+ relabelled it with ten annotators per image, and a
  large share disagree). The weakest class is {weakest} (test F1
  {scores['test']['per_class_f1'][weakest]:.3f}); Disgust has the fewest training faces
  (under 2% of FER2013), so its figures rest on 111 test images.
- Grey, low-resolution (48 px) web faces, mostly frontal: accuracy drops on profile faces,
  heavy occlusion, children and in other capture conditions. Colour faces are turned grey
  first; that is how the model saw its training data, not a guarantee for colour photos.
- One face crop at a time; expressions are posed or spontaneous snapshots, not video
  dynamics. Not for decisions about people (hiring, policing, health): expression is not
  emotion, and the data's demographics are unknown.

## Terms
FER2013 is research data (the ICML 2013 representation-learning challenge); these weights
are derived from it and are for research use under the data's terms. The images themselves
are not in this repository.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", type=Path, help="bench/results/train_<name>.json")
    ap.add_argument("--prepare-command", required=True,
                    help="the `fer prepare` command that made the run folder")
    args = ap.parse_args(argv)
    result = store.read_json(args.result) | {"_source": args.result.relative_to(REPO)
                                             if args.result.is_absolute() else args.result}
    # The card and the checkpoint's JSON name no folder of the machine that trained it.
    result["run"]["command"] = shown_command(shlex.split(result["run"]["command"]))
    best = Path(result["run_dir"]) / "model" / "best.pt"
    payload, meta = load_checkpoint(best)  # weights_only: a checkpoint is data
    # Preprocessing follows the faces the model learnt from. Runs trained before the grey
    # check looked at validation judged the training split, whose per-channel noise copies
    # hid FER2013's grey faces; the current rule is applied here and the change recorded.
    grey = _grey_faces(store.load_set(result["run_dir"], "val"))
    if grey != is_grayscale(meta):
        meta = {**meta, "preprocessing": preprocessing(meta["model"], grayscale=grey),
                "preprocessing_note": f"grayscale set to {grey} at shipping: the run's "
                "validation faces are grey (three equal channels); on grey faces the grey "
                "step changes no input, so every figure here holds unchanged"}
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    target = WEIGHTS / f"{NAME}.pt"
    shutil.copyfile(best, target)
    if target.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{best}: {target.stat().st_size} bytes, over {MAX_BYTES}")
    store.write_json(target.with_suffix(".json"),
                     {**meta, "metrics": {s: {k: v for k, v in m.items() if k != "per_class_f1"}
                                          for s, m in result["scores"].items()},
                      "trained_by": result["run"]["command"],
                      "prepared_by": args.prepare_command})
    store.write_bytes(CARD, card(result, meta, args.prepare_command, target).encode())
    print(f"wrote {target} ({target.stat().st_size / 2**20:.1f} MB), "
          f"{target.with_suffix('.json')}, {CARD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
