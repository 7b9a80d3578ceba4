"""(ours) The dataset audit: out-of-sample probabilities by k-fold cross-validation of a fast
model, ranked for likely label errors, and its figures. Lists for a person to review.

May import: fer_core.config, fer_core.prepare, fer_core.runtime, fer_core.store, scikit-learn,
cleanlab, torch.
"""
