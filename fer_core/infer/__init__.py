"""Inference on new data: faces found in photos, folders and video frames, cropped as the
model was trained, then classified.

May import: fer_core.prepare (detection, alignment, resizing), fer_core.models,
fer_core.evaluate, fer_core.runtime, fer_core.store, torch, OpenCV.
"""
