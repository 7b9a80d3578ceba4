"""Training: its config (one frozen schema) and the loop (train_one_epoch, evaluate per
epoch, a checkpoint that resumes, class weights, early stopping).

May import: fer_core.models, fer_core.evaluate, fer_core.runtime, fer_core.store, torch.
"""
