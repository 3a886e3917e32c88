"""Pictures: traversal grids and image rows of faces (``grids``) and the reports' charts (``charts``)."""

from .grids import compare_traversals, image_row, label_font, traversal_grid, traversal_rows, upscale

__all__ = ["compare_traversals", "image_row", "label_font", "traversal_grid", "traversal_rows", "upscale"]
