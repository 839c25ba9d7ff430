"""The Python side of the btauth benchmark: `GET /v1/identity` the way the bittensor docs recommend,
FastAPI + uvicorn (one worker) + `bittensor.http_auth.verify` with its in-memory nonce store.

Usage: python btauth_fastapi.py <self_hotkey_ss58> <port>
"""
import sys

import uvicorn
from fastapi import FastAPI, HTTPException, Request

from bittensor import http_auth

SELF = sys.argv[1]
PORT = int(sys.argv[2])
app = FastAPI()
nonces = http_auth.InMemoryNonceStore()


@app.get("/v1/identity")
async def identity(request: Request):
    body = await request.body()
    try:
        caller = http_auth.verify(
            request.headers, body, method=request.method,
            path=request.url.path + (("?" + request.url.query) if request.url.query else ""),
            self_hotkey_ss58=SELF, nonce_store=nonces,
        )
    except http_auth.AuthError as e:
        raise HTTPException(status_code=401, detail=type(e).__name__)
    return {"hotkey": SELF, "caller": caller.hotkey_ss58, "version": "bench"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, workers=1, log_level="warning", access_log=False)
