"""Machine learning for the annotator: plain PyTorch, NumPy and scikit-learn, never Django or ``annotator``."""
