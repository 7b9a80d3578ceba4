"""The HTTP service behind ``fer serve``: a model loaded once, photos in, one JSON object per
face out (the fields of ``fer predict``'s rows), through the same face pipeline as every
other door (fer_core.infer); a page at ``/`` to try it by hand.

May import: fer_core.infer, fer_core.models, fer_core.store, FastAPI, Starlette, numpy.
Never Prefect.
"""
