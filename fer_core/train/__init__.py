"""Training: its config (one frozen schema), the loop (``loop``: train_one_epoch, evaluate
per epoch, a checkpoint that resumes, early stopping), what it optimises (``optim``:
class weights, the optimiser, the learning-rate schedule) and what it is fed (``targets``:
batches, and targets under ``label_mode``: majority, probability draws, distributions).

May import: fer_core.config, fer_core.models, fer_core.evaluate, fer_core.runtime, fer_core.store,
torch.
"""
