"""Machine learning for the annotator: plain PyTorch and NumPy, no Django (except ``tasks.py``)."""
