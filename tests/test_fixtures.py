"""The facts kept in tests/fixtures/reference (what the suite needs from ../shared/reference, which a clone of the
project does not have) are the shared folder's files, byte for byte, wherever that folder is present."""
from __future__ import annotations

import pytest
from helpers import REFERENCE, ROOT

SHARED_REFERENCE = ROOT.parent / "shared" / "reference"
KEPT = sorted(path.name for path in REFERENCE.iterdir())


def test_the_fixtures_are_there() -> None:
    assert KEPT == ["reference_options.md", "sr_published_weights.json", "state_dict_keys.json",
                    "visdom_0.2.4_static_files.tsv"]


@pytest.mark.parametrize("name", KEPT)
def test_a_fixture_equals_the_shared_reference(name: str) -> None:
    shared = SHARED_REFERENCE / name
    if not shared.is_file():
        pytest.skip(f"{shared} is absent (../shared is not beside this checkout): nothing to compare with")
    assert (REFERENCE / name).read_bytes() == shared.read_bytes()
