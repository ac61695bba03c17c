"""Image views: the compare canvas and the difference heat-map."""
