"""The real text8 download path, against small zips served by a loopback HTTP server."""

import io
import lzma
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from training.corpus import CorpusError, download_text8, read_corpus

TEXT = " anarchism originated as a term of abuse" * 200


def make_zip(text: str = TEXT) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("text8", text)
    return buffer.getvalue()


class Served:
    """What the server sends: the body, whether to honour Range, and where to cut the connection."""

    body: bytes = b""
    honour_range = True
    cut_at: int | None = None
    ranges_seen: list[str] = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body, start = Served.body, 0
        requested = self.headers.get("Range")
        Served.ranges_seen.append(requested)
        if requested and Served.honour_range:
            start = int(requested.removeprefix("bytes=").removesuffix("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        end = len(body) if Served.cut_at is None else Served.cut_at
        self.wfile.write(body[start:end])

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    Served.body, Served.honour_range, Served.cut_at, Served.ranges_seen = make_zip(), True, None, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/text8.zip"
    httpd.shutdown()


def test_good_download_is_checked_and_read(server, tmp_path):
    path = download_text8(tmp_path, url=server, expected_size=len(Served.body))
    assert path.name == "text8.zip" and read_corpus(path) == TEXT
    assert download_text8(tmp_path, url=server, expected_size=len(Served.body)) == path
    assert Served.ranges_seen == [None]  # the finished file is not fetched again


def test_truncated_download_fails_clearly_then_resumes(server, tmp_path):
    Served.cut_at = len(Served.body) // 3
    with pytest.raises(CorpusError, match="run prepare again to resume"):
        download_text8(tmp_path, url=server, expected_size=len(Served.body))
    assert (tmp_path / "text8.zip.part").stat().st_size == len(Served.body) // 3
    Served.cut_at = None
    path = download_text8(tmp_path, url=server, expected_size=len(Served.body))
    assert Served.ranges_seen[-1] == f"bytes={len(Served.body) // 3}-"
    assert read_corpus(path) == TEXT and not (tmp_path / "text8.zip.part").exists()


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    (tmp_path / "text8.zip.part").write_bytes(b"stale bytes")
    Served.honour_range = False
    path = download_text8(tmp_path, url=server, expected_size=len(Served.body))
    assert read_corpus(path) == TEXT


def test_wrong_size_is_an_error_naming_both_sizes(server, tmp_path):
    with pytest.raises(CorpusError, match=rf"gave {len(Served.body):,} bytes, expected 31,344,016"):
        download_text8(tmp_path, url=server)


def test_damaged_zip_of_the_right_size_is_deleted(server, tmp_path):
    good = bytearray(Served.body)
    good[len(good) // 2 : len(good) // 2 + 40] = b"\0" * 40
    Served.body = bytes(good)
    with pytest.raises(CorpusError, match="damaged zip|not a zip"):
        download_text8(tmp_path, url=server, expected_size=len(Served.body))
    assert not (tmp_path / "text8.zip.part").exists()


def test_unreachable_host_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="download of http://127.0.0.1:9/text8.zip failed"):
        download_text8(tmp_path, url="http://127.0.0.1:9/text8.zip", expected_size=10)


def test_local_corpus_files_in_every_format(tmp_path):
    (tmp_path / "c.txt").write_text(TEXT)
    with lzma.open(tmp_path / "c.xz", "wt") as file:
        file.write(TEXT)
    (tmp_path / "c.zip").write_bytes(make_zip())
    assert read_corpus(tmp_path / "c.txt") == read_corpus(tmp_path / "c.xz") == read_corpus(tmp_path / "c.zip") == TEXT
    (tmp_path / "broken.xz").write_bytes(b"not xz at all")
    with pytest.raises(CorpusError, match="broken.xz cannot be read"):
        read_corpus(tmp_path / "broken.xz")
