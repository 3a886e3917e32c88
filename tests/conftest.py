import numpy as np
import pytest

from tlgan.plugins import load_plugins

load_plugins()


@pytest.fixture
def toy():
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator

    return load_generator("toy-linear", "cpu"), load_extractor("toy-linear", "cpu")


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    """The explorer of toy-linear axes fitted on 1,500 faces (one per test module; a module that needs another
    explorer defines its own ``explorer``)."""
    from tlgan.app.explorer import Explorer
    from tlgan.extractors import load_extractor
    from tlgan.generators import load_generator
    from tlgan.jobs import discover

    gen, ext = load_generator("toy-linear", "cpu"), load_extractor("toy-linear", "cpu")
    d = discover(tmp_path_factory.mktemp("toy"), gen, ext, 1500, seed=0, save_images=False, progress=False)
    return Explorer(d.axes, gen, ext)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (the browser tests skip first if either is missing)."""
    from browser_support import launched_browser

    with launched_browser() as b:
        yield b


@pytest.fixture
def page(browser):
    """A fresh page (own cookies and storage) that accepts downloads."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
