"""Object detection for ``boxes`` projects: box post-processing (``nms``) and, to come, the detector."""
