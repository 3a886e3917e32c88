"""Extractors for the Ray tests, loaded by Ray's worker processes as a plugin (``TLGAN_PLUGINS=ray_support``).

Both label exactly like the toy extractor. ``toy-dies-once`` kills its own
process with SIGKILL on its second call, once per file named in
``$TLGAN_TEST_KILL_MARK`` (a worker lost mid-run); ``toy-slow`` sleeps per
call, so a driver can be killed while chunks are in flight.
"""

from __future__ import annotations

import os
import signal
import time

from tlgan.extractors import EXTRACTORS
from tlgan.toy import ToyLinearExtractor

KILL_MARK = "TLGAN_TEST_KILL_MARK"


@EXTRACTORS.register("toy-dies-once", "the toy extractor; its process is killed on its second call, once")
class DiesOnce(ToyLinearExtractor):
    name = "toy-dies-once"
    calls = 0

    def extract(self, images):
        DiesOnce.calls += 1
        if DiesOnce.calls == 2:
            try:  # one process of all wins the mark (created exclusively) and dies
                os.close(os.open(os.environ[KILL_MARK], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().extract(images)


@EXTRACTORS.register("toy-slow", "the toy extractor, 0.2 s per call")
class Slow(ToyLinearExtractor):
    name = "toy-slow"

    def extract(self, images):
        time.sleep(0.2)
        return super().extract(images)
