"""The declared public surface is complete and sorted."""

from __future__ import annotations

import asr


def test_all_is_sorted_and_unique() -> None:
    assert list(asr.__all__) == sorted(set(asr.__all__))


def test_all_names_exist_and_public_names_are_declared() -> None:
    for name in asr.__all__:
        assert hasattr(asr, name), name
    public = {
        name
        for name, value in vars(asr).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("asr.")
    }
    assert public <= set(asr.__all__), public - set(asr.__all__)
