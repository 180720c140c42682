"""Serving: predictions from registered versions, every one logged (``predictor``), and their typed
results (``results``)."""
