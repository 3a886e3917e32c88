"""A labelling session without the page: pages of faces, labels, resuming where one stopped, suggestions."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .sheets import contact_sheet
from .sources import FaceSource
from .store import Label, LabelError, LabelStore, check_feature
from .suggest import suggest_uncertain

if TYPE_CHECKING:
    from ..extractors.learned import Embedder


SUGGEST_MIN_PER_CLASS = 20
SUGGEST_POOL = 384


@dataclass
class Page:
    """The faces on screen: their indices and, for the current feature, their labels (1, 0 or None)."""

    indices: list[int]
    labels: list[int | None]
    title: str
    number: int | None = None  # page number, or None for a page of suggestions


class Labeller:
    """What the labelling page does, without the page: pages of faces, labels, resuming, suggestions.

    ``source``: a :class:`FaceSource` or :class:`RunSource`; ``store``: the
    label file; ``embedder``: what the uncertainty probe reads (``faceres`` or
    ``pixels``, see :class:`tlgan.extractors.trained.Embedder`).
    """

    def __init__(self, source: FaceSource, store: LabelStore, page_size: int = 24, embedder: str = "faceres",
                 device: str | None = None) -> None:
        if store.generator is not None and store.generator != source.generator_name:
            raise LabelError(f"{store.path} holds labels of generator {store.generator!r}, but the faces come "
                             f"from {source.generator_name!r}: use another label file")
        if page_size < 1:
            raise LabelError("a page holds at least one face")
        self.source, self.store, self.page_size = source, store, int(page_size)
        self.embedder_name, self.device = embedder, device
        self._embedder: Embedder | None = None
        self._embedded: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def pages(self) -> int | None:
        return None if self.source.n is None else max(1, -(-self.source.n // self.page_size))

    def label_of(self, feature: str, index: int) -> int | None:
        return self.store.get(self.source.seed, index, feature)

    def page(self, number: int, feature: str) -> Page:
        """Page ``number`` (0-based) of consecutive faces."""
        number = int(number)
        if number < 0 or (self.pages is not None and number >= self.pages):
            last = f"0..{self.pages - 1}" if self.pages is not None else ">= 0"
            raise LabelError(f"page {number} does not exist (pages {last})")
        lo = number * self.page_size
        hi = lo + self.page_size if self.source.n is None else min(lo + self.page_size, self.source.n)
        idx = [i for i in range(lo, hi) if i not in self.source.excluded]
        return Page(idx, [self.label_of(feature, i) for i in idx] if feature else [None] * len(idx),
                    f"page {number + 1}" + (f" of {self.pages}" if self.pages else "")
                    + f": faces {lo}..{hi - 1}", number)

    def resume_page(self, feature: str) -> int:
        """The first page with a face not yet labelled for ``feature`` (where to pick up)."""
        done = {i for (s, i) in self.store.labelled(feature, self.source.seed)} if feature else set()
        i = 0
        limit = self.source.n if self.source.n is not None else len(done) + 1
        while i < limit and i in done:
            i += 1
        page = i // self.page_size
        return min(page, self.pages - 1) if self.pages is not None else page

    def set_label(self, feature: str, index: int, value) -> Label:
        """Save one label now (validated: feature name, value, index within the source)."""
        check_feature(feature)
        self.source.check([index])
        return self.store.add(self.source.seed, int(index), feature, value, self.source.generator_name)

    def counts(self, feature: str) -> tuple[int, int]:
        """(yes, no) for ``feature`` among this source's faces."""
        if not feature:
            return 0, 0
        values = list(self.store.labelled(feature, self.source.seed).values())
        return values.count(1), values.count(0)

    def embed(self, indices: Sequence[int]) -> np.ndarray:
        """Embeddings of faces (computed once per face and kept)."""
        from ..extractors.learned import Embedder

        with self._lock:
            if self._embedder is None:
                self._embedder = Embedder(self.embedder_name, self.device)
            todo = [i for i in dict.fromkeys(int(i) for i in indices) if i not in self._embedded]
            for lo in range(0, len(todo), 64):
                part = todo[lo:lo + 64]
                for i, v in zip(part, self._embedder(self.source.images(part)), strict=True):
                    self._embedded[i] = v
            return np.stack([self._embedded[int(i)] for i in indices]) if len(indices) else np.zeros((0, 0))

    def suggest(self, feature: str, k: int | None = None, pool: int = SUGGEST_POOL,
                min_per_class: int = SUGGEST_MIN_PER_CLASS, seed: int = 0) -> tuple[Page, str]:
        """The ``k`` unlabelled faces a probe on the labels so far is least sure about (uncertainty sampling).

        The candidates are ``pool`` unlabelled faces drawn at random from the
        first (labelled + 2 x pool) indices. Raises :class:`LabelError` until
        there are ``min_per_class`` labels of each class.
        """
        check_feature(feature)
        k = k or self.page_size
        done = self.store.labelled(feature, self.source.seed)
        yes = sum(v == 1 for v in done.values())
        if min(yes, len(done) - yes) < min_per_class:
            raise LabelError(f"suggestions start at {min_per_class} labels of each class for {feature!r}; "
                             f"there are {yes} yes and {len(done) - yes} no so far")
        labelled = sorted(i for (_, i) in done)
        excluded = self.source.excluded
        span = max(labelled) + 1 + 2 * pool
        if self.source.n is not None:
            span = min(span, self.source.n)
        free = np.array([i for i in range(span) if (self.source.seed, i) not in done and i not in excluded], np.int64)
        if not len(free):
            raise LabelError(f"every face is labelled for {feature!r}")
        rng = np.random.default_rng(seed + len(done))
        cand = np.sort(rng.choice(free, min(pool, len(free)), replace=False))
        x_lab = self.embed(labelled)
        y_lab = np.array([done[(self.source.seed, i)] for i in labelled])
        order, p = suggest_uncertain(x_lab, y_lab, self.embed(cand.tolist()), k, min_per_class, seed)
        idx = [int(i) for i in cand[order]]
        msg = (f"{len(idx)} faces a probe on {yes} yes / {len(done) - yes} no labels is least sure about "
               f"(P({feature}) {p.min():.2f}..{p.max():.2f}, from {len(cand)} unlabelled candidates)")
        return Page(idx, [None] * len(idx), f"suggested for {feature}", None), msg

    def sheet(self, indices: Sequence[int], feature: str = "", cols: int = 8, cell: int = 96):
        """A contact sheet (PIL image) of faces with their numbers (and their labels for ``feature``)."""
        marks = None
        if feature:
            names: dict[int | None, str] = {1: "yes", 0: "no"}
            marks = [names.get(self.label_of(feature, i), "") for i in indices]
        return contact_sheet(self.source.images(list(indices)), list(indices), cols, cell, marks)
