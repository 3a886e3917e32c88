"""Pictures: traversal grids and image rows of faces (``grids``) and the reports' charts (``charts``)."""

from .grids import compare_traversals, image_row, traversal_grid, upscale

__all__ = ["compare_traversals", "image_row", "traversal_grid", "upscale"]
