"""The CPU stage: concurrent MSA and template searches, features.pkl and its meta, the shared
feature cache. It runs on CPU nodes and never imports jax (tests/fast/test_layout.py checks)."""
