"""The interactive explorer (``tlgan serve``): a web page over the library's step 5.

``tlgan.app.state`` holds everything the page does, as plain Python that
needs no browser and no gradio (the state, slider and lock changes, the undo
stack, the shareable state JSON, rendering and readouts); ``tlgan.app.web`` is
the gradio page, a thin edge over it (imported lazily: gradio is the ``app``
extra).
"""

from .state import Explorer, ExplorerState, Session, StateError, decode_state, encode_state, state_from_token, state_token

__all__ = [
                    "Explorer",
                    "ExplorerState",
                    "Session",
                    "StateError",
                    "decode_state",
                    "encode_state",
                    "state_from_token",
                    "state_token",
]
