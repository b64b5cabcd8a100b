"""Remote tracking: the ``aim-core server`` and the clients behind ``Run(repo="aim://...")``.

Client side: :mod:`.writer` (the run writer ``Run`` feeds), :mod:`.sender` (the thread that
sends batches, spools them on failure and sends heartbeats), :mod:`.spool`, :mod:`.transport`
(HTTP with httpx), :mod:`.run` and :mod:`.repo` (``RemoteRun``, ``RemoteRepo``).
Server side: :mod:`.app` (Starlette routes), :mod:`.live_runs` (the run writers the server
holds), :mod:`.security` (token, body limit). Shared: :mod:`.protocol` (the wire format) and
:mod:`.urls`. Only :mod:`.urls` is imported by the SDK itself; the rest needs the
``[remote]`` extra (httpx on clients; starlette and uvicorn on the server).
"""

from .urls import is_remote_url, remote_url_of

__all__ = ["is_remote_url", "remote_url_of"]
