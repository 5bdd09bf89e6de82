"""The networks and what runs them: ``cnn`` builds the CNN and the embedding head, ``predict`` gives
their (N, C, S) probabilities (MC dropout included), ``files`` saves and loads model files.

Callers import from the modules themselves (``from ml.models.predict import predict_proba``).
"""
