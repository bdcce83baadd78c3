"""`python -m app`: serve the article and API with uvicorn, configured by RNN_* environment variables."""

import sys

import uvicorn

from app.settings import SettingsError, load_settings


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as error:
        sys.exit(f"error: {error}")
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, log_level=settings.log_level)


if __name__ == "__main__":
    main()
