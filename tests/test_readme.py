"""The README a newcomer reads first (issue 21, item 8): every demo sign-in `make run` prints is in it, and what it
links to is inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from credits.demo import DEMO_USERS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_lists_every_demo_sign_in_that_make_run_prints():
    missing = [(phone, name) for phone, name, _roles, _org in DEMO_USERS if phone not in README or name not in README]
    assert not missing


def test_every_file_the_readme_names_is_in_the_repository():
    linked = set(re.findall(r"\]\(([^)#]+)\)", README)) | set(re.findall(r"`((?:\.\./|docs/)[^`]+\.md)`", README))
    local = [path for path in linked if not path.startswith("http")]
    outside = [path for path in local if not (ROOT / path).resolve().is_relative_to(ROOT)]
    absent = [path for path in local if not (ROOT / path).exists()]
    assert not outside and not absent, (outside, absent)
