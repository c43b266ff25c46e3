"""tests/README.md keeps every module findable: its own test file, or a row saying where."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("kser", "kser/models", "cli", "tfrecords_builder")


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in (REPO / "tests" / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = re.findall(r"`(tests/[^`]+\.py)`", cells[1])
    return rows


def test_every_module_has_its_own_test_file_or_a_row_in_the_index():
    rows = _rows()
    unlisted = []
    for package in PACKAGES:
        for module in sorted((REPO / package).glob("*.py")):
            if module.name == "__init__.py":
                continue
            name = f"{package}/{module.name}"
            covered = name in rows or f"{package}/*.py" in rows
            if package == "kser" and (REPO / "tests" / f"test_{module.stem}.py").is_file():
                covered = True
            if not covered:
                unlisted.append(name)
    assert not unlisted, f"no tests/test_<module>.py and no row in tests/README.md: {unlisted}"


def test_every_test_file_the_index_names_exists():
    named = {path for paths in _rows().values() for path in paths}
    assert named, "the index lists no test files"
    missing = sorted(path for path in named if not (REPO / path).is_file())
    assert not missing, missing
