"""The scheme language: models, loading with located errors, checks, canonical form, diff."""

from .canonical import canonical_json, content_hash, to_yaml
from .diff import diff, render
from .errors import SchemeError
from .load import Loaded, load, loads
from .models import Scheme

__all__ = ["Loaded", "Scheme", "SchemeError", "canonical_json", "content_hash", "diff", "load", "loads", "render", "to_yaml"]
