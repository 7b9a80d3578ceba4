"""Options that several ``fer`` commands share, each with its one-line help: what the
preparation reads and where it writes (``prepare``, ``pipeline``), and what training
takes (``train``, ``pipeline``). Imports nothing heavy: the model names and devices come
from the torch-free ``fer_core.config.train``."""

from __future__ import annotations

from fer_core.config.train import DEFAULT_MODEL, DEVICES, MODEL_NAMES, TrainConfig


def preparation(p, *, config: str) -> None:
    """The data folder and the preparation's options; ``config`` names the option of a
    preparation config file (``--config`` for ``prepare``, ``--prepare-config`` for
    ``pipeline``)."""
    p.add_argument("data", help="DATA/<class>/*, DATA/{train,test}/<class>/* or fer2013.csv")
    p.add_argument("--out", required=True, help="run folder for sets, reports and manifest")
    p.add_argument(config, help="YAML/JSON config with ingest/dedup/split/quality/align/"
                   "resize/augment sections, and subsets: {NAME: LIST}")
    p.add_argument("--classes", help="class subset after mapping: 'paper' (the six) or a,b,c")
    p.add_argument("--class-map", help="'fer2013' or old=New,... pairs")
    p.add_argument("--augment", default="auto", help="paper | balance | none | auto "
                   "(paper for the paper's six classes, balance otherwise)")
    p.add_argument("--no-align", action="store_true", help="skip MTCNN alignment")
    p.add_argument("--store", help="result store folder (default RUN_DIR/store)")


def _default(key: str):
    return TrainConfig.model_fields[key].default


def training(p) -> None:
    p.add_argument("--config", dest="train_config", help="YAML of TrainConfig keys "
                   "(e.g. bench/configs/gpu_resnet18.yaml)")
    # Named in the help, checked by fer_cli.checks (whose message lists them too).
    p.add_argument("--model", metavar="NAME",
                   help=f"architecture: {' | '.join(MODEL_NAMES)} (default {DEFAULT_MODEL})")
    p.add_argument("--epochs", type=int, help=f"epochs to train (default {_default('epochs')})")
    p.add_argument("--batch-size", type=int,
                   help=f"training images per batch (default {_default('batch_size')})")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {_default('lr')})")
    p.add_argument("--device", metavar="DEVICE", help=f"{' | '.join(DEVICES)} (auto: cuda, "
                   "then mps, then cpu)")
    p.add_argument("--seed", type=int,
                   help=f"random seed of training (default {_default('random_state')})")
    p.add_argument("--mlflow", metavar="URI", help="also log the training to this MLflow "
                   "tracking store (e.g. sqlite:///mlflow.db; default $MLFLOW_TRACKING_URI; "
                   "needs pip install 'fer-pipeline[mlflow]')")
