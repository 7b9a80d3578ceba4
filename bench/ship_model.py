"""Ship a benchmarked model: copy the run's best checkpoint into fer_core/models/weights/
and write its model card from the benchmark's own result file. Two shipped models: the
default FER2013 one (docs/MODEL_CARD.md) and the FER+ one (``--model ferplus``,
docs/MODEL_CARD_FERPLUS.md).

    python bench/ship_model.py bench/results/train_cpu_30min.json \
        --prepare-command "fer prepare fer2013/ --out RUN --class-map fer2013 \
--subset test_private=fer2013/test_private.txt"
    python bench/ship_model.py bench/results/train_ferplus_crossentropy.json --model ferplus
    python bench/ship_model.py bench/results/train_shipped_mixup.json \
        --tta-result bench/results/tta_shipped_mixup.json --prepare-command "..."

Every figure in a card comes from the result JSON that bench/train_fer2013.py or
bench/train_ferplus.py wrote (never typed by hand); the FER+ card also shows the majority
twin (train_ferplus_majority.json beside it) when it exists; ``--tta-result`` (from
bench/tta_fer2013.py) ships the test-time augmentation chosen there on validation, in the
checkpoint's face spec, with that TTA's scores. The card's prose (limits, terms) is this
script's template (bench/card_ferplus.py for FER+).
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

from bench.card_ferplus import card as ferplus_card  # noqa: E402
from bench.measure import result_checkpoint, shown_command, shown_path  # noqa: E402
from fer_core import store  # noqa: E402
from fer_core.models.checkpoint import is_grayscale, load_checkpoint, preprocessing  # noqa: E402
from fer_core.models.reference import SHIPPED  # noqa: E402
from fer_core.models.spec import FaceSpec, face_spec  # noqa: E402
from fer_core.train.loop import _grey_faces  # noqa: E402

WEIGHTS = REPO / "fer_core" / "models" / "weights"
CARDS = {"fer2013": REPO / "docs" / "MODEL_CARD.md",
         "ferplus": REPO / "docs" / "MODEL_CARD_FERPLUS.md"}
NAME = SHIPPED["fer2013"]  # the file stem: fer2013_vgg_faces
MAX_BYTES = 10 * 2**20  # what the repository takes


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


TTA_WORDS = {"none": "no test-time augmentation", "hflip": "the mirror test-time augmentation",
             "fivecrop": "five-crop test-time augmentation",
             "tencrop": "ten-crop test-time augmentation (five crops and their mirrors)"}


def _training(cfg: dict, result: dict) -> str:
    """The recipe in words, from the config that ran."""
    mix = [f"{k} (alpha {cfg[f'{k}_alpha']})" for k in ("mixup", "cutmix")
           if cfg.get(f"{k}_alpha")]
    loss = "class-weighted" if cfg["class_weights"] else "plain (unweighted)"
    return (f"{cfg['epochs']} epochs of {cfg['optimizer'].upper()} with a {cfg['schedule']} "
            f"schedule (peak lr {cfg['lr']}), batch {cfg['batch_size']}, {loss} cross-entropy "
            f"with label smoothing {cfg['label_smoothing']}, random shift/zoom/rotation/mirror "
            f"on the fly{', ' + ' and '.join(mix) if mix else ''}, bf16 on the CPU "
            f"({cfg['cpu_amp']}). Model selection on validation macro-F1 (best epoch "
            f"{result.get('best_epoch')}).")


def _tta_section(tta: dict | None) -> str:
    if not tta:
        return ""
    rows = ["| TTA | val accuracy | val macro-F1 |", "|---|---:|---:|"]
    rows += [f"| `{m}` | {_pct(v['scores']['val']['accuracy'])} | "
             f"{v['scores']['val']['macro_f1']:.4f} |" for m, v in tta["modes"].items()]
    return (f"\nThe test-time augmentation was chosen on validation ({tta['chosen_on']}) by "
            f"`bench/tta_fer2013.py`, `{tta['_source']}`; test and PrivateTest played no "
            "part. It is in the checkpoint's face spec, so `fer evaluate`, `fer predict`, "
            "`fer serve` and the exported files all apply it:\n\n" + "\n".join(rows) + "\n")


def card(result: dict, meta: dict, prepare_command: str, weights: Path,
         tta: dict | None = None, *, balanced: bool = True) -> str:
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
    noise = " after the paper's class-balancing noise augmentation" if balanced else \
        ", without the paper's class-balancing noise copies (`--augment none`)"
    noise_step = ", class-balancing noise" if balanced else ""
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
  `train/` folder was split 80/20 (stratified, seed 0) into training and validation
  ({result['splits'].get('train', '?'):,} training images{noise}); `test/` (PublicTest +
  PrivateTest) was held out whole.
- **Preparation** (the paper's, sections 4-5: SHA-1 deduplication, label conflicts resolved
  in favour of the held-out test copy, MTCNN eye alignment, 96x96{noise_step}):

      {prepare_command}

- **Training** (`bench/configs/{Path(result['config_file']).name}`; the exact command, run by
  `bench/train_fer2013.py`):

      {run['command']}

  {_training(cfg, result)}
- **Cost**: {result['wall_seconds'] / 60:.1f} minutes of wall time for training plus
  evaluation on {machine.get('cpu_count')} CPU cores ({machine.get('cpu')}), peak RSS
  {round(result['peak_rss_mib']):,} MiB, on an otherwise idle machine (other processes took
  {100 * run['cpu']['other_processes_cpu_share']:.1f}% of the CPUs).

## Results (float32, with {TTA_WORDS[face_spec(meta).tta]})
{chr(10).join(rows)}
{_tta_section(tta)}
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
- FER2013 itself holds near-copies across its splits: 1,231 of the 7,178 test images (17%)
  have a near-copy (the same photo re-cropped, re-encoded or retouched) in train or
  validation (`bench/near_duplicates.py`; bench/README.md, near-duplicates), so the test
  figures above are somewhat optimistic for unseen faces. Scores on other datasets were
  measured outside this repository, each dataset as one test set.
- One face crop at a time; expressions are posed or spontaneous snapshots, not video
  dynamics. Not for decisions about people (hiring, policing, health): expression is not
  emotion, and the data's demographics are unknown.

## Terms
FER2013 is research data (the ICML 2013 representation-learning challenge); these weights
are derived from it and are for research use under the data's terms. The images themselves
are not in this repository.
"""


def _balanced(run_dir: Path) -> bool:
    """Whether the run's training set holds the paper's class-balancing noise copies (its
    prepare.json's augment plan), as the card says."""
    return store.read_json(run_dir / "prepare.json")["config"]["augment"]["plan"] != "none"


def _twin(path: Path, result: dict) -> dict | None:
    """The same FER+ recipe with majority labels (train_ferplus_majority*.json beside
    ``path``), when ``result`` is another mode's and that file exists."""
    mode = result["label_mode"]
    other = path.with_name(path.name.replace(f"_{mode}", "_majority", 1))
    if mode == "majority" or other == path or not other.is_file():
        return None
    return store.read_json(other) | {"_source": shown_path(other)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", type=Path, help="bench/results/train_<name>.json (FER2013) or "
                    "bench/results/train_ferplus_<mode>.json (--model ferplus)")
    ap.add_argument("--model", choices=sorted(SHIPPED), default="fer2013",
                    help="which shipped model the run becomes (default fer2013)")
    ap.add_argument("--prepare-command", help="fer2013: the `fer prepare` command that made "
                    "the run folder (a FER+ result records its own)")
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS,
                    help="where the checkpoint goes (default fer_core/models/weights)")
    ap.add_argument("--card", type=Path, help="the model card (default "
                    "docs/MODEL_CARD.md, docs/MODEL_CARD_FERPLUS.md for ferplus)")
    ap.add_argument("--tta-result", type=Path, help="bench/results/tta_<name>.json (from "
                    "bench/tta_fer2013.py): ship the TTA chosen there on validation")
    args = ap.parse_args(argv)
    ferplus = args.model == "ferplus"
    if not ferplus and not args.prepare_command:
        ap.error("--prepare-command is required for the FER2013 model")
    result = store.read_json(args.result) | {"_source": shown_path(args.result)}
    if ferplus and "train_command" not in result:
        raise SystemExit(f"{args.result}: not a result of bench/train_ferplus.py (it has no "
                         "train_command); --model ferplus ships a train_ferplus_<mode>.json")
    # The card and the checkpoint's JSON name no folder of the machine that trained it.
    if ferplus:
        trained_by, prepared_by = result["train_command"], result["prepare_command"]
    else:
        result["run"]["command"] = shown_command(shlex.split(result["run"]["command"]))
        trained_by, prepared_by = result["run"]["command"], args.prepare_command
    run_dir = Path(result["run_dir"])
    run_dir = run_dir if run_dir.is_absolute() else REPO / run_dir
    # A FER+ run holds one training, and its result records only the config file's keys.
    best = run_dir / "model" / "best.pt" if ferplus else result_checkpoint(result)
    payload, meta = load_checkpoint(best)  # weights_only: a checkpoint is data
    # Preprocessing follows the faces the model learnt from. Runs trained before the grey
    # check looked at validation judged the training split, whose per-channel noise copies
    # hid FER2013's grey faces; the current rule is applied here and the change recorded.
    grey = _grey_faces(store.load_set(run_dir, "val"))
    if grey != is_grayscale(meta):
        meta = {**meta, "preprocessing": preprocessing(meta["model"], grayscale=grey),
                "preprocessing_note": f"grayscale set to {grey} at shipping: the run's "
                "validation faces are grey (three equal channels); on grey faces the grey "
                "step changes no input, so every figure here holds unchanged"}
    tta = None
    if args.tta_result:
        tta = store.read_json(args.tta_result) | {"_source": shown_path(args.tta_result)}
        if tta["checkpoint"]["sha256"] != store.file_sha256(best):
            raise SystemExit(f"{args.tta_result} scored another checkpoint than {best}")
        result["scores"] = tta["modes"][tta["chosen"]]["scores"]
        spec = FaceSpec(**{**face_spec(meta).model_dump(), "tta": tta["chosen"]})
        meta = {**meta, "face_spec": spec.model_dump(mode="json"),
                "tta_note": f"{tta['chosen']} chosen on {tta['chosen_on']} by "
                f"bench/tta_fer2013.py ({tta['_source']}); training's own validation used "
                "its config's TTA"}
    args.weights_dir.mkdir(parents=True, exist_ok=True)
    target = args.weights_dir / f"{SHIPPED[args.model]}.pt"
    if best.stat().st_size > MAX_BYTES:  # checked before it replaces a shipped model
        raise SystemExit(f"{best}: {best.stat().st_size} bytes, over {MAX_BYTES}")
    shutil.copyfile(best, target)
    excluded = result.get("excluded") or {}
    store.write_json(target.with_suffix(".json"),
                     {**meta, "metrics": {s: {k: v for k, v in m.items() if k != "per_class_f1"}
                                          | ({"labels": "majority", "excluded": excluded[s]}
                                             if excluded.get(s) is not None else {})
                                          for s, m in result["scores"].items()},
                      "trained_by": trained_by, "prepared_by": prepared_by})
    card_path = args.card or CARDS[args.model]
    text = (ferplus_card(result, meta, name=target.stem, weights_bytes=target.stat().st_size,
                         twin=_twin(args.result, result)) if ferplus
            else card(result, meta, prepared_by, target, tta, balanced=_balanced(run_dir)))
    store.write_bytes(card_path, text.encode())
    print(f"wrote {target} ({target.stat().st_size / 2**20:.1f} MB), "
          f"{target.with_suffix('.json')}, {card_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
