"""Models: the registry (name -> architecture, input size, normalisation), checkpoints
(save, safe load, resume), the face spec and its test-time augmentation (spec, tta),
fine-tuning's start (transfer), the shipped weights and export to TorchScript / ONNX.

May import: fer_core.config (class maps), fer_core.store, fer_core.runtime,
fer_core.prepare.resize (normalisation), torch, torchvision. Not train, evaluate or infer.
"""
