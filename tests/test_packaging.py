"""The package's promises: every setting documented alike in the settings classes, `.env.example`
and the README; every imported third-party module declared; typing markers shipped; the Slack
scopes asked for at install are the manifest's."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from bots.settings import AppSettings
from bots.slack.settings import DEFAULT_SCOPES

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bots", "core", "plugins", "simulator")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def settings_defaults() -> dict[str, str]:
    defaults: dict[str, str] = {}
    for group in AppSettings.groups().values():
        defaults |= group.env_defaults()
    return defaults


def env_example() -> dict[str, tuple[str, str]]:
    """NAME -> (default, the comment line above it) from .env.example."""
    lines = (ROOT / ".env.example").read_text("utf-8").splitlines()
    found = {}
    for before, line in zip(["", *lines], lines, strict=False):
        match = re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            found[match.group(1)] = (match.group(2), before.removeprefix("# ").strip())
    return found


def readme_settings() -> set[str]:
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1]))
    return names


def test_env_example_lists_every_setting_with_its_default_and_meaning() -> None:
    example, defaults = env_example(), settings_defaults()
    assert set(example) == set(defaults)
    for name, (default, meaning) in example.items():
        assert default == defaults[name], name
        assert meaning and not re.fullmatch(r"[A-Z0-9_]+=.*", meaning), f"{name} has no meaning"


def test_the_readme_settings_table_names_every_setting_and_no_other() -> None:
    assert readme_settings() == set(settings_defaults())


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_third_party_module_is_a_declared_dependency() -> None:
    declared = {
        _normal(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])
        for requirement in PYPROJECT["project"]["dependencies"]
    }
    owners = metadata.packages_distributions()
    missing = {}
    for module in sorted(_imported_top_levels()):
        distributions = {_normal(d) for d in owners.get(module, [])}
        assert distributions, f"{module} is imported but no installed distribution provides it"
        if not distributions & declared:
            missing[module] = sorted(distributions)
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_each_package_ships_a_typing_marker() -> None:
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file(), package
        assert "py.typed" in data.get(package, []), package


def test_the_licence_and_classifiers_are_declared() -> None:
    project = PYPROJECT["project"]
    assert (ROOT / project["license-files"][0]).is_file()
    assert project["license"] == "MIT" and "Typing :: Typed" in project["classifiers"]
    assert (ROOT / "CHANGELOG.md").is_file()


def test_the_default_slack_scopes_are_the_manifest_bot_scopes() -> None:
    manifest = (ROOT / "docs" / "slack-manifest.yaml").read_text("utf-8")
    bot = manifest.split("    bot:\n", 1)[1]
    scopes = re.findall(r"^      - (\S+)$", bot.split("\nsettings:", 1)[0], flags=re.MULTILINE)
    assert tuple(scopes) == DEFAULT_SCOPES
