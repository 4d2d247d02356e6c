from __future__ import annotations

import inspect

import s3drop


def test_all_matches_the_public_names() -> None:
    public = {
        name
        for name, value in vars(s3drop).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(s3drop.__all__) == public | {"__version__"}


def test_every_exported_name_is_defined_in_the_package() -> None:
    for name in s3drop.__all__:
        if name != "__version__":
            assert getattr(s3drop, name).__module__.startswith("s3drop."), name
