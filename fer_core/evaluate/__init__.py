"""Evaluation: a model scored on saved sets (``score``: accuracy, macro-F1, per class, the
confusion matrix, flip TTA, and the reports written from it), the tables and figures
drawn from the scores (``figures``), and the faces a file of votes' majority labels leave
out of a score (``majority``, as FER+ reports it).

May import: fer_core.models, fer_core.prepare.resize, fer_core.runtime, fer_core.store,
torch, scikit-learn, matplotlib.
"""
