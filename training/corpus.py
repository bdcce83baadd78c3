"""Getting the corpus: text8 from its canonical URL, or a local text8-shaped file."""

import hashlib
import http.client
import lzma
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm

TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
TEXT8_SIZE = 31_344_016
TEXT8_MEMBER = "text8"


class CorpusError(RuntimeError):
    """A corpus that cannot be had; the message says why and what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_text8(directory: Path, url: str = TEXT8_URL, expected_size: int = TEXT8_SIZE) -> Path:
    """Download text8.zip into `directory`, resuming a partial download, and check it.

    A finished download is checked for its size and the zip's integrity; a
    partial one (`text8.zip.part`) is continued with an HTTP range request, or
    restarted if the server ignores the range or the part is already too long.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "text8.zip"
    if target.exists() and target.stat().st_size == expected_size and zipfile.is_zipfile(target):
        return target
    partial = directory / "text8.zip.part"
    have = partial.stat().st_size if partial.exists() else 0
    if have > expected_size:
        partial.unlink()
        have = 0
    if have < expected_size:
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                resumed = have > 0 and response.status == 206
                mode = "ab" if resumed else "wb"
                start = have if resumed else 0
                with open(partial, mode) as file, tqdm(
                    total=expected_size, initial=start, unit="B", unit_scale=True, desc="text8.zip"
                ) as progress:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        file.write(block)
                        progress.update(len(block))
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            raise CorpusError(
                f"download of {url} failed ({error}); run prepare again to resume, or pass --corpus PATH"
            ) from None
    size = partial.stat().st_size
    if size != expected_size:
        if size > expected_size:
            partial.unlink()
        raise CorpusError(
            f"{url} gave {size:,} bytes, expected {expected_size:,}; run prepare again to resume or restart"
        )
    if not zipfile.is_zipfile(partial):
        partial.unlink()
        raise CorpusError(f"{url} gave {expected_size:,} bytes that are not a zip file; deleted, run prepare again")
    try:
        with zipfile.ZipFile(partial) as archive:
            broken = archive.testzip() or (None if TEXT8_MEMBER in archive.namelist() else f"no member {TEXT8_MEMBER!r}")
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        broken = str(error)
    if broken is not None:
        partial.unlink()
        raise CorpusError(f"{url} gave a damaged zip ({broken}); deleted, run prepare again")
    partial.replace(target)
    return target


def read_corpus(path: Path) -> str:
    """The text of a .txt, .xz or .zip (first member) file of text8-shaped text."""
    if not path.is_file():
        raise CorpusError(f"corpus file {path} does not exist")
    try:
        if path.suffix == ".xz":
            with lzma.open(path, "rt", encoding="utf-8") as file:
                return file.read()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if not names:
                    raise CorpusError(f"{path} is an empty zip")
                return archive.read(names[0]).decode("utf-8")
        return path.read_text(encoding="utf-8")
    except (lzma.LZMAError, zipfile.BadZipFile, UnicodeDecodeError, EOFError) as error:
        raise CorpusError(f"{path} cannot be read as {path.suffix or 'text'}: {error}") from None
