"""The bare baseline of the sign benchmark: a plain FastAPI route signing the same POST policy with
one reused boto3 client, nothing else (no auth, no limits, no audit, no metrics, no middleware).

``uvicorn --factory bench.bare:create_bare_app`` serves ``POST /sign``: it parses the same JSON body
as s3drop's sign route (a pydantic model), builds the same key shape, fields and conditions
(content type, the ``x-amz-meta-*`` fields, the exact ``content-length-range``) and answers
``boto3 client.generate_presigned_post(...)`` as JSON, 201. An ``async def`` route: with static
credentials boto3's signing never waits on I/O, and a plain ``def`` would add a thread-pool hop,
so this is the fastest a developer would write it (the strongest baseline). The client is made
once at start-up from the same environment as the s3drop server (``S3DROP_BUCKET``,
``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``, the AWS keys); signing contacts no storage.
"""

from __future__ import annotations

import os
import secrets
from typing import Annotated, Any

import boto3
from botocore.config import Config
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


class SignBody(BaseModel):
    filename: Annotated[str, Field(min_length=1, max_length=1024)]
    content_type: Annotated[str, Field(min_length=1, max_length=255)]
    size: Annotated[int, Field(ge=1)]


def create_bare_app() -> FastAPI:
    bucket = os.environ["S3DROP_BUCKET"]
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3")
    client: Any = boto3.client(
        "s3",
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=endpoint,
        config=Config(
            signature_version="s3v4", s3={"addressing_style": "path" if endpoint else "virtual"}
        ),
    )
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:  # what the harness waits for before it starts
        return {"status": "ok"}

    @app.post("/sign", status_code=201)
    async def sign(body: SignBody) -> JSONResponse:
        key = f"incoming/{secrets.token_hex(12)}.jpg"
        fields = {"Content-Type": body.content_type, "x-amz-meta-filename": body.filename}
        conditions: list[Any] = [{name: value} for name, value in fields.items()]
        conditions.append(["content-length-range", body.size, body.size])
        form = client.generate_presigned_post(
            bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=600
        )
        return JSONResponse({"upload": form}, status_code=201)

    return app
