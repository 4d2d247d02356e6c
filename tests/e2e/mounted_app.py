"""Someone's own app with the bundled s3drop app mounted at /uploads (for test_page_mounted.py):
``python -m uvicorn tests.e2e.mounted_app:app``, settings from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from s3drop.web.app import create_app

app = FastAPI()
app.mount("/uploads", create_app())


@app.get("/")
async def home() -> dict[str, str]:
    return {"app": "the host's own"}
