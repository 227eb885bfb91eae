"""The web UI's files (public: the page holds no data; every figure it shows comes from the
authenticated API and /ws). Plain HTML, CSS and JavaScript shipped in the package
(gui_gateway/static/), no build step and no third-party code; the Content-Security-Policy of
guards.py (`default-src 'self'`) holds because the files load nothing inline or from elsewhere.

    GET /              redirect to /ui/
    GET /ui/           the page (login first: the API key is kept in the tab's sessionStorage)
    GET /ui/{asset}    app.js, app.css
Not in the OpenAPI document: they are the page, not the API."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

STATIC = files("eafix.gui_gateway") / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def assets() -> dict[str, str]:
    """The shipped files by name (only these are served: no path ever reaches the file system)."""
    return {f.name: str(f) for f in STATIC.iterdir() if f.is_file() and "." + f.name.rpartition(".")[2] in MEDIA_TYPES}


def build_ui_router() -> APIRouter:
    router = APIRouter(tags=["ui"])
    shipped = assets()

    @router.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @router.get("/ui/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(shipped["index.html"], media_type=MEDIA_TYPES[".html"])

    @router.get("/ui/{asset}", include_in_schema=False)
    async def asset(asset: str) -> FileResponse:
        path = shipped.get(asset)
        if path is None:
            raise HTTPException(404, f"no UI file {asset!r}")
        return FileResponse(path, media_type=MEDIA_TYPES["." + asset.rpartition(".")[2]])

    return router
