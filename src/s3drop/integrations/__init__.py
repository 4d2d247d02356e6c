"""s3drop inside another web framework's app: one module per framework (:mod:`.fastapi`,
:mod:`.django`, :mod:`.flask`), each a thin edge over :class:`s3drop.S3Drop`; :mod:`.api` is the
JSON API as plain blocking calls that the synchronous frameworks' adapters share. Importing this
package imports no framework."""
