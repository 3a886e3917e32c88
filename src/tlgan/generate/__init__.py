"""Generate to order: faces whose features meet a spec, steered along the feature axes and confirmed by the
extractor (``spec``: the conditions; ``plan``: the steering loop; ``dataset``: balanced data sets)."""
