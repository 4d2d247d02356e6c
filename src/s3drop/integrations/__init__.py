"""s3drop inside another web framework's app: one module per framework (:mod:`.fastapi`)."""
