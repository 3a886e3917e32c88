"""Run the ``tlgan`` command in-process as a user would type it."""

from click.testing import CliRunner, Result

from tlgan.cli import main


def run(*args, ok: bool = True) -> Result:
    """``tlgan ARGS``; with ``ok``, assert it succeeded (showing its output if not)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result
