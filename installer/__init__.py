"""`make install`, `make recipes` and friends (python -m installer). Standard library only and
importable on Python 3.8: it runs on login nodes without the kit's stack."""
import os

# The kit's checkout: the templates, recipes and requirements are read from here.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
