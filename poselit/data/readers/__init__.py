"""One module per annotation format, each returning an :class:`~poselit.data.AnnotationSet`."""
