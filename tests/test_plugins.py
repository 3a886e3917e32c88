"""Plugins reach tlgan by both documented routes: ``$TLGAN_PLUGINS`` and the ``tlgan.plugins`` entry point."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest

from tlgan import plugins
from tlgan.generators import GENERATORS
from tlgan.toy import ToyLinearGenerator

PLUGIN = '''
from tlgan.generators import GENERATORS
from tlgan.toy import ToyLinearGenerator

@GENERATORS.register("{name}", "a toy registered by a test plugin")
def make(**options):
    return ToyLinearGenerator(**options)
'''


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A clean plugin state: load_plugins runs again; the test's modules and registrations are undone after."""
    monkeypatch.setattr(plugins, "_loaded", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.PLUGINS_ENV, raising=False)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    made: list[str] = []

    def module(name: str) -> str:
        (tmp_path / f"{name}.py").write_text(PLUGIN.format(name=name.replace("_", "-")))
        made.append(name)
        return name

    yield module
    for name in made:
        sys.modules.pop(name, None)
        GENERATORS._factories.pop(name.replace("_", "-"), None)
        GENERATORS._help.pop(name.replace("_", "-"), None)


def test_a_module_named_in_the_environment_registers_a_generator(fresh, monkeypatch):
    first, second = fresh("tlgan_test_env_plugin_a"), fresh("tlgan_test_env_plugin_b")
    monkeypatch.setenv(plugins.PLUGINS_ENV, f" {first}, ,{second} ")
    assert "tlgan-test-env-plugin-a" not in GENERATORS
    plugins.load_plugins()
    assert "tlgan-test-env-plugin-a" in GENERATORS and "tlgan-test-env-plugin-b" in GENERATORS
    assert isinstance(GENERATORS.create("tlgan-test-env-plugin-a"), ToyLinearGenerator)
    assert GENERATORS.describe("tlgan-test-env-plugin-b") == "a toy registered by a test plugin"
    plugins.load_plugins()  # idempotent: a second call imports nothing again (a re-registration would raise)


def test_a_missing_module_in_the_environment_is_named_in_the_error(fresh, monkeypatch):
    monkeypatch.setenv(plugins.PLUGINS_ENV, "tlgan_no_such_plugin_module")
    with pytest.raises(ImportError, match=r"tlgan_no_such_plugin_module.*\$TLGAN_PLUGINS"):
        plugins.load_plugins()


def test_an_entry_point_in_the_group_registers_a_generator(fresh, monkeypatch):
    name = fresh("tlgan_test_entry_point_plugin")
    asked: list[str] = []

    def entry_points(group: str):
        asked.append(group)
        return [EntryPoint(name="test", value=name, group=group)]

    monkeypatch.setattr(plugins, "entry_points", entry_points)
    plugins.load_plugins()
    assert asked == ["tlgan.plugins"]
    assert "tlgan-test-entry-point-plugin" in GENERATORS
    assert isinstance(GENERATORS.create("tlgan-test-entry-point-plugin"), ToyLinearGenerator)
