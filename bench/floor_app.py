"""The throughput floor: uvicorn, set up as the emulator is, answering a fixed JSON body.

``python -m bench.floor_app`` prints the same ready line as ``bulktag emulator``.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from bulktag.emulator import serve
from bulktag.emulator.calls import GATEWAY_PREFIX

BODY = b'{"data":{"contact_id":"6f1c1d5e-1c2b-4c8e-9a7e-0a1b2c3d4e5f","tags":["vip","legal"]}}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def floor(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    serve(
        floor,
        base_path=GATEWAY_PREFIX,
        announce=lambda root: {"keys": {"wbk_floor": ["read", "write"]}, "plan": "floor"},
    )
