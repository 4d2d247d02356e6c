"""One module per image format, as Pillow has its ``*ImagePlugin.py``: the magic test, the header
reader and the structure walk of that format, registered in :mod:`s3drop._formats`. Pure Python
over bytes: no decoder runs here."""
