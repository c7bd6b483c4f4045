"""The README stays a door: short, its first commands `make run` and `make test`, its route table the one in functions/routes.py."""

from __future__ import annotations

import re
from pathlib import Path

from functions.routes import ROUTES, route_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_readme_lists_every_route_with_who_may_call_it() -> None:
    assert route_table() in README, "README's route table is stale: paste functions.routes.route_table()"
    assert route_table().count("\n") == len(ROUTES) + 1


def test_the_first_two_commands_are_make_run_and_make_test() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_is_at_most_200_lines_and_its_links_resolve() -> None:
    assert README.count("\n") <= 200
    for target in re.findall(r"\]\(((?:docs/)?[\w.-]+\.md)(?:#[\w-]+)?\)", README):
        assert (ROOT / target).is_file(), target


def test_every_variable_the_readme_names_is_read_by_the_code() -> None:
    code = "\n".join(path.read_text() for folder in ("shared", "functions", "scripts") for path in (ROOT / folder).rglob("*.py"))
    named = set(re.findall(r"`(ONBOARDING_[A-Z_]+[A-Z])(?:\*|=\w+)?`", README))
    assert "ONBOARDING_BACKEND" in named
    assert [name for name in sorted(named) if f'"{name}' not in code] == []
