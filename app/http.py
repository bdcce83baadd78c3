"""HTTP for answers computed once: content negotiation, validators, and static files kept in memory.

Every body is compressed once, when it is made, never per request: a page view
then costs the server little more than writing bytes it already holds.
"""

import hashlib
import mimetypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.answers import Answer

VERSION_HEADER = "X-Answers-Version"
# Worth compressing: text. Images such as PNG are compressed already.
COMPRESSIBLE_TYPES = ("text/", "application/json", "application/javascript", "image/svg+xml")


def accepts_gzip(headers: Headers) -> bool:
    """Whether Accept-Encoding allows gzip (by name or `*`, with a q above 0)."""
    for item in headers.get("accept-encoding", "").split(","):
        coding, _, parameters = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        quality = parameters.strip()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison, as If-None-Match uses: `*`, or any listed tag with the same opaque value."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def encoded_response(
    headers: Headers, method: str, answer: Answer, media_type: str, cache_control: str | None, extra: dict[str, str] | None = None
) -> Response:
    """`answer` as the client accepts it, or 304 (GET, HEAD) / 412 (other methods) when its If-None-Match names the ETag."""
    response_headers = {"ETag": answer.etag, **(extra or {})}
    if answer.gzipped is not None:
        response_headers["Vary"] = "Accept-Encoding"
    if cache_control:
        response_headers["Cache-Control"] = cache_control
    if etag_matches(headers.get("if-none-match"), answer.etag):
        if method in ("GET", "HEAD"):
            return Response(status_code=304, headers=response_headers)
        # RFC 9110 13.1.2: a failed If-None-Match on any other method is 412, and the method is not performed.
        return JSONResponse(
            {"detail": "If-None-Match names the current answer's ETag: the copy you hold is up to date"},
            status_code=412,
            headers=response_headers,
        )
    body = answer.body
    if answer.gzipped is not None and accepts_gzip(headers):
        body = answer.gzipped
        response_headers["Content-Encoding"] = "gzip"
    if method == "HEAD":
        response_headers["Content-Length"] = str(len(body))
        return Response(b"", media_type=media_type, headers=response_headers)
    return Response(body, media_type=media_type, headers=response_headers)


def answer_response(request: Request, answer: Answer, cache_control: str | None, version: str) -> Response:
    """A JSON answer of the API, naming the answer version it belongs to."""
    return encoded_response(request.headers, request.method, answer, "application/json", cache_control, {VERSION_HEADER: version})


@dataclass(frozen=True)
class StaticFile:
    stamp: tuple[int, int, int]
    answer: Answer
    media_type: str


class CachedStaticFiles(StaticFiles):
    """Static files read, hashed and gzip-compressed once, then served from memory with a strong ETag.

    A file is read again when its size, modification time or inode changes, so an
    edited script is served as edited. Folders and missing files are left to
    Starlette (404), and so is a whole folder that does not exist (yet). Memory:
    the folder's files and their gzip forms, a fixed set.
    """

    def __init__(self, *, cache_control: str, **options: Any) -> None:
        super().__init__(**options)
        self.cache_control = cache_control
        self._files: dict[str, StaticFile] = {}
        # Request path (normalised by Starlette) -> the file it resolved to: at most one per file of the folder.
        self._resolved: dict[str, str] = {}

    async def check_config(self) -> None:
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return await super().get_response(path, scope)
        # lookup_path guards against paths outside the folder; a stat is cheaper than Starlette's thread hop.
        # Whatever it refuses (a name too long, a null byte) Starlette answers as it always does. Its
        # realpath (an lstat per path component) was half of a static request's cost, so a path that
        # resolved to a file before is only stat-ed again: an edited or removed file is still noticed.
        resolved = self._resolved.get(path)
        try:
            full_path, status = self.lookup_path(path) if resolved is None else (resolved, os.stat(resolved))
        except (OSError, ValueError):
            full_path, status = "", None
        if status is None or not stat.S_ISREG(status.st_mode):
            self._resolved.pop(path, None)
            return await super().get_response(path, scope)
        self._resolved[path] = full_path
        stamp = (status.st_size, status.st_mtime_ns, status.st_ino)
        cached = self._files.get(full_path)
        if cached is None or cached.stamp != stamp:
            cached = self._read(full_path, stamp)
        return encoded_response(Headers(scope=scope), scope["method"], cached.answer, cached.media_type, self.cache_control)

    def warm(self) -> None:
        """Read and compress every file of the folder now, so no reader pays for it (each process has its own copy)."""
        if self.directory is None or not Path(self.directory).is_dir():
            return
        for path in sorted(Path(self.directory).rglob("*")):
            if path.is_file():
                status = path.stat()
                self._read(str(path.resolve()), (status.st_size, status.st_mtime_ns, status.st_ino))

    def _read(self, full_path: str, stamp: tuple[int, int, int]) -> StaticFile:
        with open(full_path, "rb") as file:
            body = file.read()
        media_type = mimetypes.guess_type(full_path)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type == "application/javascript":
            media_type += "; charset=utf-8"
        compressible = media_type.startswith(COMPRESSIBLE_TYPES)
        answer = Answer.of(body, "static") if compressible else Answer(body, None, f'"{hashlib.sha256(body).hexdigest()[:24]}"')
        cached = StaticFile(stamp, answer, media_type)
        self._files[full_path] = cached
        return cached


def static_cache_control(max_age: int) -> str:
    """`no-cache` (keep, but ask again each time: a cheap 304) for 0, else a public max-age."""
    return "public, no-cache" if max_age == 0 else f"public, max-age={max_age}"

