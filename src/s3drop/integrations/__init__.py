"""Adapters that embed s3drop in a host web framework: FastAPI, Django, Flask.

Each is a thin edge over :class:`s3drop.S3Drop`; importing this package imports no framework.
"""
