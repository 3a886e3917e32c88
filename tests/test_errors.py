"""One error base: tlgan's own errors are one line on the command line, bugs keep their traceback."""

import inspect

import pytest
from click.testing import CliRunner

import tlgan.cli as cli
from tlgan import axes, finders, fit, labels, registry, sample, train, weights
from tlgan.app import state
from tlgan.errors import TLGANError
from tlgan.extractors import keras_h5, learned, tfjs


@pytest.mark.parametrize("cls, builtin", [
    (weights.WeightsError, RuntimeError), (sample.RunError, RuntimeError), (axes.AxesError, ValueError),
    (fit.FitError, ValueError), (registry.UnknownNameError, KeyError), (finders.FinderError, ValueError),
    (labels.LabelError, ValueError), (train.TrainError, ValueError), (state.StateError, ValueError),
    (tfjs.UnsupportedOpError, ValueError), (keras_h5.UnsupportedLayerError, ValueError),
    (learned.TrainedExtractorError, ValueError),
])
def test_every_error_class_derives_from_the_base(cls, builtin):
    assert issubclass(cls, TLGANError) and issubclass(cls, builtin)


def test_no_error_class_outside_the_base():
    import importlib
    import pkgutil

    import tlgan

    found = []
    for info in pkgutil.walk_packages(tlgan.__path__, "tlgan."):
        if info.name.startswith("tlgan.app"):
            continue  # gradio pages; their errors are tested above
        mod = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if issubclass(obj, Exception) and obj.__module__ == mod.__name__ and not issubclass(obj, TLGANError):
                found.append(f"{mod.__name__}.{obj.__name__}")
    assert not found


def _cmd_raising(exc):
    @cli.main.command("raise-for-test")
    @cli.friendly
    def raiser():
        raise exc
    return raiser


@pytest.fixture
def raising():
    made = []

    def make(exc):
        made.append(_cmd_raising(exc))
    yield make
    cli.main.commands.pop("raise-for-test", None)


def test_our_errors_are_one_line_and_debug_shows_the_traceback(raising):
    raising(axes.AxesError("no such axis, pick one of a, b"))
    r = CliRunner().invoke(cli.main, ["raise-for-test"])
    assert r.exit_code == 1 and r.output == "Error: no such axis, pick one of a, b\n"
    r = CliRunner().invoke(cli.main, ["--debug", "raise-for-test"])
    assert r.exit_code == 1 and isinstance(r.exception, axes.AxesError)


def test_other_errors_keep_their_traceback(raising):
    raising(ValueError("a bug in numpy code"))
    r = CliRunner().invoke(cli.main, ["raise-for-test"])
    assert isinstance(r.exception, ValueError) and "Error: a bug" not in r.output
