"""The teaching decks: Markdown sources in ``slides/``, built into self-contained reveal.js HTML and PDF.

    python -m tutorial_nas.course.slides build --out slides/build [--profile ci|cpu|gpu] [--figures DIR] [--no-pdf]
    python -m tutorial_nas.course.slides fetch   # put reveal.js into the cache (the only step that needs a network)

A deck is one Markdown file, ``slides/partN_*.md``: slides are separated by a line ``---``, a slide's speaker
notes follow a line starting with ``Note:``. Two kinds of placeholders tie a deck to the package:

- ``![caption](fig:NAME)`` is a figure of ``tutorial_nas.course.figures`` (``FIGURES``), computed for this build;
- ``{{ group[key]:format }}`` is a number of that same run (``numbers.json``), or a published result cited
  from ``literature.csv`` (``{{ lit[cifar10][NASNet-A][gpu_days]:,.0f }}``); an unknown name stops the build.

reveal.js comes from the npm registry (``npm pack reveal.js@VERSION``, its SHA-512 checked against the pinned
integrity) into a cache folder, once. The build itself reads only the cache and the package: every script,
style sheet, font and figure is written into the HTML (fonts and figures as ``data:`` URIs), so a deck opens
from disk with no network, and the PDF is Chromium's print of reveal's ``?print-pdf`` view, one page a slide.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import NASInputError

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = ROOT / "slides"
REVEAL_VERSION = "5.2.1"
# npm's dist.integrity of reveal.js 5.2.1: the tarball is checked against it before it is unpacked
REVEAL_INTEGRITY = "sha512-r7//6mIM5p34hFiDMvYfXgyjXqGRta+/psd9YtytsgRlrpRzFv4RbH76TXd2qD+7ZPZEbpBDhdRhJaFgfQ7zNQ=="
CACHE_ENV = "TUTORIAL_NAS_SLIDES_CACHE"
CHROMIUM_ENV = "TUTORIAL_NAS_CHROMIUM"
THEME = "white"
WIDTH, HEIGHT = 1280, 720
# what a deck needs from the package, relative to its root
REVEAL_FILES = {"reset": "dist/reset.css", "reveal_css": "dist/reveal.css", "theme": f"dist/theme/{THEME}.css",
                "reveal_js": "dist/reveal.js", "markdown": "plugin/markdown/markdown.js",
                "notes": "plugin/notes/notes.js"}

SEPARATOR = re.compile(r"^---[ \t]*$", re.M)
NOTES = re.compile(r"^Note:[ \t]*", re.M)
FIELD = re.compile(r"\{\{\s*(.+?)\s*\}\}")
FIGURE = re.compile(r"\]\(fig:([A-Za-z0-9_]+)\)")


# -- reveal.js, from the npm registry into a cache --------------------------------------------------------------
def cache_dir(cache=None) -> Path:
    """Where reveal.js is kept: ``cache``, else ``TUTORIAL_NAS_SLIDES_CACHE``, else ``slides/.cache``."""
    return Path(cache or os.environ.get(CACHE_ENV) or SOURCE_DIR / ".cache")


def reveal_dir(cache=None) -> Path:
    return cache_dir(cache) / f"reveal.js-{REVEAL_VERSION}"


def is_cached(cache=None) -> bool:
    root = reveal_dir(cache)
    return all((root / rel).is_file() for rel in REVEAL_FILES.values())


def _integrity(blob: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode()


def fetch(cache=None) -> Path:
    """reveal.js in the cache: unpacked from ``npm pack reveal.js@REVEAL_VERSION`` when it is not there yet."""
    target = reveal_dir(cache)
    if is_cached(cache):
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise NASInputError(f"reveal.js {REVEAL_VERSION} is not in {target.parent} and `npm` is not installed to "
                            "fetch it (Debian: apt-get install npm)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        proc = subprocess.run([npm, "pack", f"reveal.js@{REVEAL_VERSION}", "--pack-destination", tmp,
                               "--cache", str(Path(tmp) / "npm-cache"), "--silent"],
                              capture_output=True, text=True, timeout=600)
        tarball = Path(tmp) / f"reveal.js-{REVEAL_VERSION}.tgz"
        if proc.returncode != 0 or not tarball.is_file():
            raise NASInputError(f"could not fetch reveal.js {REVEAL_VERSION} from the npm registry "
                                f"(`npm pack` said: {(proc.stderr or proc.stdout).strip()[-300:]})")
        blob = tarball.read_bytes()
        if _integrity(blob) != REVEAL_INTEGRITY:
            raise NASInputError(f"the reveal.js {REVEAL_VERSION} tarball does not match its pinned integrity")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarball) as tar:
            tar.extractall(unpacked, filter="data")
        if target.exists():
            shutil.rmtree(target)
        (unpacked / "package").rename(target)
    if not is_cached(cache):
        raise NASInputError(f"reveal.js {REVEAL_VERSION} unpacked into {target} lacks files the decks need")
    return target


# -- decks ------------------------------------------------------------------------------------------------------
@dataclass
class Slide:
    body: str
    notes: str


@dataclass
class Deck:
    name: str
    title: str
    slides: list


def deck_paths(src=None) -> list:
    """The deck sources, ``partN_*.md``, in order."""
    src = Path(src or SOURCE_DIR)
    paths = sorted(src.glob("part*.md"))
    if not paths:
        raise NASInputError(f"no decks (part*.md) in {src}")
    return paths


def read_deck(path) -> Deck:
    """Split a deck into slides (a line ``---`` between them) and each slide into body and notes (``Note:``)."""
    path = Path(path)
    slides = []
    for k, chunk in enumerate(SEPARATOR.split(path.read_text(encoding="utf-8")), start=1):
        parts = NOTES.split(chunk, maxsplit=1)
        body, notes = parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")
        if not body:
            raise NASInputError(f"{path.name}: slide {k} is empty")
        slides.append(Slide(body, notes))
    title = next((line[2:].strip() for line in slides[0].body.splitlines() if line.startswith("# ")), path.stem)
    return Deck(path.stem, title, slides)


def fill(text: str, numbers: dict, where: str) -> str:
    """Replace every ``{{ field:format }}`` by its value from ``numbers`` (``str.format`` field syntax)."""
    def one(match):
        try:
            return ("{" + match.group(1) + "}").format_map(numbers)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as err:
            raise NASInputError(f"{where}: no value for {{{{ {match.group(1)} }}}} ({type(err).__name__}: {err}); "
                                f"the groups are {', '.join(sorted(numbers))}") from None
    return FIELD.sub(one, text)


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".woff": "font/woff", ".woff2": "font/woff2"}[path.suffix]
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def _figures(text: str, figures: Path, where: str) -> str:
    def one(match):
        name = match.group(1)
        found = [figures / f"{name}{ext}" for ext in (".svg", ".png") if (figures / f"{name}{ext}").is_file()]
        if not found:
            raise NASInputError(f"{where}: figure {name!r} is not in {figures} "
                                "(see tutorial_nas.course.figures.FIGURES)")
        return f"]({_data_uri(found[0])})"
    return FIGURE.sub(one, text)


def _theme_css(root: Path) -> str:
    """The theme with its one ``@import`` (the font faces) inlined, each face reduced to its WOFF as a data URI."""
    theme_path = root / REVEAL_FILES["theme"]
    css = theme_path.read_text(encoding="utf-8")

    def font_faces(match):
        font_css_path = (theme_path.parent / match.group(1)).resolve()
        faces = []
        for block in re.findall(r"@font-face\s*\{(.*?)\}", font_css_path.read_text(encoding="utf-8"), flags=re.S):
            woff = re.search(r"url\(['\"]?([^'\")?#]+\.woff)['\"]?\)", block)
            if woff is None:
                raise NASInputError(f"{font_css_path.name}: a font face without a WOFF file")
            keep = [d.strip() for d in block.split(";") if d.strip() and not d.strip().startswith("src")]
            uri = _data_uri(font_css_path.parent / woff.group(1))
            faces.append("@font-face {" + "; ".join(keep + [f"src: url({uri}) format('woff')"]) + "; }")
        return "\n".join(faces)

    css = re.sub(r"@import\s+url\(['\"]?([^'\")]+)['\"]?\)\s*;", font_faces, css)
    return css


COURSE_CSS = f"""
:root {{ --r-main-font-size: 27px; --r-heading1-size: 2.0em; --r-heading2-size: 1.4em; }}
.reveal .slides section {{ text-align: left; }}
.reveal h1, .reveal h2 {{ text-transform: none; }}
.reveal .slides > section:first-of-type {{ text-align: center; padding-top: {HEIGHT // 6}px; }}
.reveal .slides section img {{ display: block; margin: 0.3em auto; max-width: 100%; max-height: {HEIGHT - 250}px;
  border: 0; box-shadow: none; background: white; }}
.reveal table {{ font-size: 0.72em; margin: 0.3em 0; }}
.reveal table th, .reveal table td {{ padding: 0.15em 0.5em; }}
.reveal ul, .reveal ol {{ display: block; margin-left: 1.2em; }}
.reveal blockquote {{ font-size: 0.8em; width: 95%; }}
.reveal small, .reveal .source {{ font-size: 0.55em; color: #555; }}
.reveal code {{ font-size: 0.85em; }}
"""


def _script(code: str) -> str:
    """JavaScript inlined in a ``<script>`` element: nothing in it may end or confuse the element."""
    return "<script>\n" + re.sub(r"</(script)", r"<\\/\1", code, flags=re.I).replace("<!--", "<\\!--") + "\n</script>"


def _style(css: str) -> str:
    return "<style>\n" + re.sub(r"</(style)", r"<\\/\1", css, flags=re.I) + "\n</style>"


def _check_offline(text: str, what: str) -> None:
    """Stop the build when a style sheet would still fetch something (an ``@import`` or a ``url()`` of a file)."""
    for m in re.finditer(r"url\(\s*['\"]?([^'\")]*)", text):
        if not m.group(1).startswith("data:"):
            raise NASInputError(f"{what} still refers to {m.group(1)[:80]!r}; the deck would not be self-contained")
    if "@import" in text:
        raise NASInputError(f"{what} still has an @import")


def render_deck(deck: Deck, numbers: dict, figures: Path, reveal: Path) -> str:
    """The deck as one self-contained HTML document."""
    sections = []
    for k, slide in enumerate(deck.slides, start=1):
        where = f"{deck.name}.md, slide {k}"
        body = _figures(fill(slide.body, numbers, where), figures, where)
        notes = fill(slide.notes, numbers, where)
        text = body + (f"\n\nNote:\n{notes}" if notes else "")
        sections.append(f'<section data-markdown><textarea data-template>\n{html.escape(text, quote=False)}\n'
                        f'</textarea></section>')
    read = {key: (reveal / rel).read_text(encoding="utf-8") for key, rel in REVEAL_FILES.items()}
    theme = _theme_css(reveal)
    for name, css in (("reset.css", read["reset"]), ("reveal.css", read["reveal_css"]), ("theme", theme)):
        _check_offline(css, name)
    config = {"hash": True, "width": WIDTH, "height": HEIGHT, "margin": 0.04, "slideNumber": "c/t",
              "center": False, "transition": "none", "pdfMaxPagesPerSlide": 1, "pdfSeparateFragments": False}
    return "\n".join([
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(deck.title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">',
        f'<meta name="generator" content="tutorial_nas.course.slides with reveal.js {REVEAL_VERSION}">',
        _style(read["reset"]), _style(read["reveal_css"]), _style(theme), _style(COURSE_CSS),
        "</head>", "<body>", '<div class="reveal"><div class="slides">', *sections, "</div></div>",
        _script(read["reveal_js"]), _script(read["markdown"]), _script(read["notes"]),
        _script(f"Reveal.initialize(Object.assign({json.dumps(config)}, "
                "{plugins: [RevealMarkdown, RevealNotes]}));"),
        "</body>", "</html>", ""])


# -- PDF through headless Chromium --------------------------------------------------------------------------------
def find_chromium() -> str | None:
    """The Chromium to drive: ``TUTORIAL_NAS_CHROMIUM``, else the first of chromium, chromium-browser,
    google-chrome on the PATH; ``None`` when there is none."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        return named if Path(named).is_file() else shutil.which(named)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


READY = ("() => window.Reveal && Reveal.isReady() && document.fonts.status === 'loaded' && "
         "[...document.images].every(i => i.complete && i.naturalWidth > 0)")
# reveal lays out the print view after it is ready, over a few frames: wait until every slide sits on its page
PRINT_READY = ("() => window.Reveal && Reveal.isReady() && document.fonts.status === 'loaded' && "
               "[...document.images].every(i => i.complete && i.naturalWidth > 0) && "
               "document.querySelectorAll('.pdf-page').length === Reveal.getTotalSlides() && "
               "document.querySelectorAll('.reveal .slides > section').length === 0")


def _pdf_pages(path) -> int | None:
    """The number of pages of a PDF, or None when pypdf is not installed (nothing to check it with)."""
    try:
        from pypdf import PdfReader
    except ImportError:
        return None
    return len(PdfReader(str(path)).pages)


def print_pdfs(htmls: list, chromium: str | None = None) -> list:
    """Each deck printed to PDF next to its HTML (reveal's ``?print-pdf`` view: one page a slide)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise NASInputError("printing the decks to PDF needs the Python package playwright "
                            "(pip install -e '.[dev]'), or pass --no-pdf") from None
    chromium = chromium or find_chromium()
    if chromium is None:
        raise NASInputError("printing the decks to PDF needs Chromium (Debian: apt-get install chromium; or set "
                            f"{CHROMIUM_ENV}), or pass --no-pdf")
    pdfs = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        try:
            for path in htmls:
                page = browser.new_page()
                page.goto(Path(path).resolve().as_uri() + "?print-pdf")
                page.wait_for_function(PRINT_READY, timeout=60_000)
                pdf = Path(path).with_suffix(".pdf")
                slides = page.evaluate("Reveal.getTotalSlides()")
                for attempt in range(4):  # a print taken while the layout settles can come out as one page
                    page.wait_for_timeout(250 * (attempt + 1))
                    page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
                    if _pdf_pages(pdf) in (None, slides):
                        break
                page.close()
                pdfs.append(pdf)
        finally:
            browser.close()
    return pdfs


# -- the build ------------------------------------------------------------------------------------------------------
def _index(decks: list) -> str:
    items = "\n".join(f'<li><a href="{d["html"]}">{html.escape(d["title"])}</a> ({d["slides"]} slides)'
                      + (f' — <a href="{d["pdf"]}">PDF</a>' if d.get("pdf") else "") + "</li>" for d in decks)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Slides</title></head>\n"
            f"<body style=\"font-family: sans-serif\"><h1>Slides</h1><ul>\n{items}\n</ul></body></html>\n")


def build(out, src=None, profile=None, figures=None, pdf: bool = True, cache=None) -> dict:
    """Build every deck of ``src`` into ``out``: ``partN_*.html`` (self-contained) and ``partN_*.pdf``.

    The figures and numbers come from ``figures`` (a folder written by ``tutorial-nas figures``) or, by
    default, are computed now in ``profile`` into ``out/figures``. reveal.js is fetched into the cache when
    it is missing; once it is there the build needs no network.
    """
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = deck_paths(src)
    decks = [read_deck(p) for p in paths]  # a malformed deck stops the build before any work
    reveal = fetch(cache)
    timings = {}
    if figures is None:
        from .figures import write_figures

        figures = out / "figures"
        written = write_figures(figures, profile)
        timings["figures_s"] = sum(written["seconds"].values())
    figures = Path(figures)
    numbers_path = figures / "numbers.json"
    if not numbers_path.is_file():
        raise NASInputError(f"{figures} has no numbers.json; write it with `tutorial-nas figures --out {figures}`")
    numbers = json.loads(numbers_path.read_text())
    built = []
    for deck in decks:
        path = out / f"{deck.name}.html"
        path.write_text(render_deck(deck, numbers, figures, reveal), encoding="utf-8")
        built.append({"name": deck.name, "title": deck.title, "slides": len(deck.slides), "html": path.name,
                      "path": str(path)})
    if pdf:
        t = time.perf_counter()
        for entry, pdf_path in zip(built, print_pdfs([b["path"] for b in built])):
            entry["pdf"] = pdf_path.name
        timings["pdf_s"] = time.perf_counter() - t
    (out / "index.html").write_text(_index(built), encoding="utf-8")
    return {"out": str(out), "decks": built, "profile": numbers.get("profile"), "reveal.js": REVEAL_VERSION,
            **timings, "seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tutorial_nas.course.slides", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="build every deck to self-contained HTML and PDF")
    b.add_argument("--out", default=str(SOURCE_DIR / "build"))
    b.add_argument("--src", help="folder of the deck sources (default: the repository's slides/)")
    b.add_argument("--profile", choices=["ci", "cpu", "gpu"], help="profile of the figures (default: automatic)")
    b.add_argument("--figures", help="use the figures and numbers.json in this folder instead of computing them")
    b.add_argument("--no-pdf", action="store_true", help="HTML only")
    b.add_argument("--cache", help=f"reveal.js cache (default: ${CACHE_ENV} or slides/.cache)")
    b.add_argument("--json", action="store_true")
    f = sub.add_parser("fetch", help=f"put reveal.js {REVEAL_VERSION} from the npm registry into the cache")
    f.add_argument("--cache")
    f.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.action == "fetch":
            out = {"reveal.js": str(fetch(args.cache))}
            print(json.dumps(out) if args.json else f"reveal.js {REVEAL_VERSION} in {out['reveal.js']}")
            return 0
        import matplotlib

        matplotlib.use("Agg")
        out = build(args.out, src=args.src, profile=args.profile, figures=args.figures, pdf=not args.no_pdf,
                    cache=args.cache)
    except NASInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for d in out["decks"]:
            print(f"{d['html']:28s} {d['slides']:3d} slides" + (f"  + {d['pdf']}" if "pdf" in d else ""))
        print(f"built into {out['out']} in {out['seconds']:.0f} s (figures of the {out['profile']} profile)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
