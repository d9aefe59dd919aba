"""The editor's tabs hold every top-level part of the scheme language, each once, so a part added
to the language (achievements) is never left without a form."""

from __future__ import annotations

from perkflow.builder_ui.pages_drafts import TABS
from perkflow.rules.models import Scheme


def test_every_top_level_field_of_the_scheme_is_in_exactly_one_tab() -> None:
    placed = [key for _, keys in TABS for key in keys]
    assert len(placed) == len(set(placed))
    assert set(placed) == set(Scheme.model_fields) - {"perkflow"}
