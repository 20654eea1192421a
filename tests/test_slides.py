"""The decks: one per part with notes, built with the network cut, opened from disk in headless Chromium (slide
count, non-blank first and figure slides, no request leaving the machine), printed to PDF one page a slide.

The browser tests need Debian's ``chromium`` (or ``TUTORIAL_NAS_CHROMIUM``) and the Python package playwright;
without them they skip, saying so. CI installs both (``.ci/run``).
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tutorial_nas.cli import main
from tutorial_nas.course import slides
from tutorial_nas.course.figures import FIGURES
from tutorial_nas.errors import NASInputError

ROOT = Path(__file__).resolve().parent.parent
DECKS = sorted((ROOT / "slides").glob("part*.md"))
CHROMIUM = slides.find_chromium()
try:
    import playwright.sync_api  # noqa: F401

    PLAYWRIGHT = True
except ImportError:
    PLAYWRIGHT = False
needs_browser = pytest.mark.skipif(CHROMIUM is None or not PLAYWRIGHT,
                                   reason="needs Chromium (Debian: apt-get install chromium, or set "
                                          "TUTORIAL_NAS_CHROMIUM) and playwright (pip install -e '.[dev]')")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot (apt-get install graphviz)")
# probe run inside the build's namespace: it must fail to reach the outside before the build starts
PROBE = """
import socket
for target in (("1.1.1.1", 443), ("registry.npmjs.org", 443)):
    try:
        socket.create_connection(target, timeout=5).close()
    except OSError:
        continue
    raise SystemExit(f"reached {target}: the network is not cut")
print("NETWORK CUT")
"""


def expected_slides(path: Path) -> int:
    """Slides of a deck source, counted here independently of the build: separator lines plus one."""
    return len(re.findall(r"^---[ \t]*$", path.read_text(), flags=re.M)) + 1


def _can_cut_network() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


CUT = _can_cut_network()


# -- the sources ------------------------------------------------------------------------------------------------
def test_one_deck_per_part_with_speaker_notes_on_every_slide():
    assert [p.name[:5] for p in DECKS] == ["part1", "part2", "part3", "part4"]
    for path, part in zip(DECKS, ("Part I ", "Part II ", "Part III ", "Part IV ")):
        deck = slides.read_deck(path)
        assert deck.title.startswith(part), deck.title
        assert len(deck.slides) == expected_slides(path) >= 6
        assert all(s.notes for s in deck.slides), [k for k, s in enumerate(deck.slides, 1) if not s.notes]


def test_decks_use_only_package_figures_and_every_figure_is_shown():
    used = {m for p in DECKS for m in re.findall(r"\]\(fig:(\w+)\)", p.read_text())}
    assert used == set(FIGURES)
    for path in DECKS:  # no picture from anywhere else: every image of a deck is a figure of the package
        assert not re.search(r"!\[[^\]]*\]\((?!fig:)", path.read_text()), path.name


def test_placeholders_are_filled_from_the_numbers_or_stop_the_build():
    numbers = {"bench": {"n_unique": 5390, "best": 92.6},
               "lit": {"cifar10": {"NAS-RL, Zoph & Le": {"gpu_days": 22400.0}}}}
    text = ("{{ bench[n_unique]:, }} cells, best {{bench[best]:.1f}} %, "
            "{{ lit[cifar10][NAS-RL, Zoph & Le][gpu_days]:,.0f }}")
    assert slides.fill(text, numbers, "t") == "5,390 cells, best 92.6 %, 22,400"
    with pytest.raises(NASInputError, match=r"deck.md, slide 3: no value for \{\{ bench\[missing\] \}\}"):
        slides.fill("{{ bench[missing] }}", numbers, "deck.md, slide 3")
    with pytest.raises(NASInputError, match="no value"):
        slides.fill("{{ nothing[here]:.2f }}", numbers, "deck.md, slide 1")


def test_a_slide_without_body_is_refused(tmp_path):
    (tmp_path / "part1_x.md").write_text("# Title\n\nNote:\nhello\n---\n\nNote:\nonly notes\n")
    with pytest.raises(NASInputError, match="slide 2 is empty"):
        slides.read_deck(tmp_path / "part1_x.md")


def test_decks_no_longer_say_what_their_runs_contradict():
    """Sentences the runs refuted, and a method listed twice; the wording that replaced them is computed
    (tests/test_figures.py) or cited."""
    text = {p.stem: p.read_text() for p in DECKS}
    gone = {"part1_early_nas": ["exponential in depth", "Nothing on a slide is typed", "every curve starts near chance",
                                "no candidate inherits anything", "full_training[many]", "CPU-hours", "CPU-days",
                                "penalise parameters", "Genetic CNN on the chain space", "so it is a lower bound",
                                "No number on a slide is typed"],
            "part2_remedies": ["made the search small enough to **transfer**", "Chapter 2 runs it longer",
                               "the opposite failure of long", "barely left uniform",
                               "Random search with weight sharing (Li & Talwalkar): "],
            "part3_comparison": ["best cell's test accuracy - incumbent", "one table entry's noise",
                                 "Ceiling of the space (best test accuracy in the table)",
                                 "cannot tell the strategies apart", "compare[significant]", "hard to beat",
                                 "{{ compare[budget_s] }}", "many simulated hours", "sampling without repeats",
                                 "**small** next to the seed-to-seed spread", "fall far below"],
            "part4_future": ["bounds every method's ranking", "more reliably than their training noise",
                             "the derived cell degenerates", "early stopping, DARTS+, P-DARTS",
                             "FLOPs only partly predict it", "[DARTS-V1][note]", "Add a seed to the benchmark",
                             "although a cell of them is poor", "against the table epoch by epoch"]}
    for deck, phrases in gone.items():
        for phrase in phrases:
            assert phrase not in text[deck], (deck, phrase)


@pytest.fixture(scope="module")
def ci_numbers(tmp_path_factory):
    """Every figure of the ci profile, computed once, and its numbers.json."""
    import matplotlib

    matplotlib.use("Agg")
    from tutorial_nas.course.figures import write_figures

    out = tmp_path_factory.mktemp("figures")
    written = write_figures(out, "ci")
    return json.loads(written["numbers"].read_text())


@needs_dot
def test_every_placeholder_of_every_deck_is_filled_by_a_ci_build(ci_numbers):
    for path in DECKS:
        for k, slide in enumerate(slides.read_deck(path).slides, start=1):
            for part in (slide.body, slide.notes):
                filled = slides.fill(part, ci_numbers, f"{path.name}, slide {k}")
                assert "{{" not in filled and "nan" not in filled.lower().split(), (path.name, k)


@needs_dot
def test_the_computed_sentences_of_a_ci_build_follow_its_numbers(ci_numbers):
    ft, darts, comp = ci_numbers["full_training"], ci_numbers["darts_run"], ci_numbers["compare"]
    assert ("near chance" in ft["climb"]) == (ft["first_epoch_acc"] < 1.5 * ft["chance"])
    assert ("barely left uniform" in darts["moved"]) == (darts["max_move_pp"] < 1)
    assert darts["arch_lr"] == 3e-4 and darts["dataset"] == ci_numbers["bench"]["dataset"]
    assert ft["zoph_candidates"] == 12_800 and ft["device"] == "CPU"
    assert comp["gap_size"] == ("smaller than" if abs(comp["gap"]) < comp["entry_noise"] else "larger than")
    # a reported accuracy is the mean of the report half's seeds (chapter 3), not of all the table's seeds
    k = comp["seeds_per_cell"]
    assert comp["report_seeds"] == k - k // 2 < k
    assert comp["entry_noise"] == pytest.approx(comp["seed_std"] / comp["report_seeds"] ** 0.5)
    from tutorial_nas.profiles import get_profile

    assert comp["chapter_seeds"] == get_profile("ci").compare.seeds
    listed = [s for key in ("better", "worse", "not_different") for s in comp[key].split(", ") if s != "none"]
    assert sorted(listed) == sorted(s for s in comp["strategies"].split(", ") if s != "random")
    bench = ci_numbers["bench"]
    assert bench["tau_one_seed"] < bench["tau_table"] and bench["seeds_per_cell"] > 1


# -- the figures command ----------------------------------------------------------------------------------------
@needs_dot
def test_figures_command_writes_named_files_and_numbers(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TUTORIAL_NAS_PROFILE", "ci")
    code = main(["figures", "--out", str(tmp_path), "--only", "search_loop,bench_distribution,literature_cost",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["profile"] == "ci"
    assert sorted(out["files"]) == ["bench_distribution", "literature_cost", "search_loop"]
    assert (tmp_path / "search_loop.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    for name in ("bench_distribution", "literature_cost"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads((tmp_path / "numbers.json").read_text())
    assert numbers["bench"]["n_unique"] == numbers["bench"]["n_trained"] > 1000
    assert numbers["bench"]["median_test_acc"] < numbers["bench"]["best_test_acc"] <= 100
    assert numbers["lit"]["cifar10"]["NASNet-A"]["source"].startswith("Ren et al. 2020")
    assert "GPU-days" in numbers["lit"]["claims"]["median_cost"]


def test_figures_command_refuses_an_unknown_figure(tmp_path, capsys):
    assert main(["figures", "--out", str(tmp_path), "--only", "pie_chart"]) == 2
    assert "unknown figure(s) ['pie_chart']" in capsys.readouterr().err


@pytest.mark.skipif(not CUT, reason="cannot cut the network here: `unshare -rn` (user and network namespaces) "
                                    "is not available")
def test_build_with_an_empty_cache_and_no_network_fails_clearly(tmp_path):
    env = {**os.environ, "npm_config_fetch_retries": "0"}
    proc = subprocess.run(["unshare", "-rn", sys.executable, "-m", "tutorial_nas.course.slides", "build", "--out",
                           str(tmp_path / "out"), "--cache", str(tmp_path / "empty"), "--no-pdf"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "reveal.js" in proc.stderr and ("npm" in proc.stderr or "fetch" in proc.stderr)
    assert not (tmp_path / "out" / "part1_early_nas.html").exists()


# -- the build, with the network cut, and the decks in Chromium -----------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Fetch reveal.js (network allowed), then build every deck (ci figures, PDF included) with the network cut."""
    if CHROMIUM is None or not PLAYWRIGHT:
        pytest.skip("needs Chromium and playwright")
    try:
        slides.fetch()
    except NASInputError as err:
        pytest.skip(f"reveal.js is not cached and could not be fetched: {err}")
    out = tmp_path_factory.mktemp("slides")
    env = {**os.environ, "TUTORIAL_NAS_PROFILE": "ci", "MPLBACKEND": "Agg", "npm_config_offline": "true"}
    build = [sys.executable, "-m", "tutorial_nas.course.slides", "build", "--out", str(out),
             "--profile", "ci", "--json"]
    if CUT:  # a fresh network namespace has no interface but a downed loopback: nothing is reachable
        cmd = ["unshare", "-rn", "sh", "-c", f'"{sys.executable}" -c "$0" && exec "$@"', PROBE, *build]
    else:
        cmd = build
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cut = proc.stdout.startswith("NETWORK CUT")
    result = json.loads(proc.stdout.split("\n", 1)[1] if cut else proc.stdout)
    return {"out": out, "cut": cut, "result": result}


@needs_browser
def test_build_ran_with_the_network_cut(built):
    if not CUT:
        pytest.skip("cannot cut the network here: `unshare -rn` is not available; the decks were built with it on")
    assert built["cut"]
    assert [d["name"] for d in built["result"]["decks"]] == [p.stem for p in DECKS]
    assert built["result"]["profile"] == "ci"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


def _grey(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


def _content_share(page, clip=None) -> float:
    """Share of pixels that change when the slide content is hidden: the slide against an empty page with the
    same background and controls."""
    shot = page.screenshot(clip=clip)
    page.add_style_tag(content=".reveal .slides { visibility: hidden !important; }")
    empty = page.screenshot(clip=clip)
    page.evaluate("document.head.lastElementChild.remove()")
    return float((np.abs(_grey(shot) - _grey(empty)) > 24).mean())


@needs_browser
@pytest.mark.parametrize("source", DECKS, ids=[p.stem for p in DECKS])
def test_deck_opens_from_disk_offline_and_renders(built, browser, source):
    path = built["out"] / f"{source.stem}.html"
    html = path.read_text()
    assert "<script src=" not in html and "<link " not in html  # everything is inside the file
    context = browser.new_context(viewport={"width": slides.WIDTH, "height": slides.HEIGHT})
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function(slides.READY, timeout=30_000)

    assert page.evaluate("Reveal.getTotalSlides()") == expected_slides(source)
    notes = page.evaluate("Reveal.getSlides().map(s => (Reveal.getSlideNotes(s) || '').trim())")
    assert all(notes), [k for k, n in enumerate(notes, 1) if not n]
    assert page.evaluate("Reveal.getIndices().h") == 0
    assert page.locator(".reveal .slides section.present h1").inner_text().startswith("Part ")
    assert _content_share(page) > 0.01  # the title slide is not blank

    figure_slide = page.evaluate("Reveal.getSlides().findIndex(s => s.querySelector('img'))")
    assert figure_slide > 0
    page.evaluate(f"Reveal.slide({figure_slide})")
    page.wait_for_function(f"Reveal.getIndices().h === {figure_slide}")
    img = page.locator(".reveal .slides section.present img").first
    assert img.evaluate("i => i.complete && i.naturalWidth > 0 && i.src.startsWith('data:image/')")
    box = img.bounding_box()
    assert box["width"] > 200 and box["height"] > 100
    assert box["y"] + box["height"] <= slides.HEIGHT + 1  # the figure fits the slide
    assert _content_share(page) > 0.015
    assert _content_share(page, clip=box) > 0.02  # and the figure itself is drawn, not an empty frame

    heights = page.evaluate("Reveal.getSlides().map((s, i) => { Reveal.slide(i); return s.scrollHeight; })")
    assert max(heights) <= slides.HEIGHT, heights  # no slide runs over its page

    local = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert local == [], f"requests leaving the machine: {local}"
    assert errors == []
    context.close()


@needs_browser
@pytest.mark.parametrize("source", DECKS, ids=[p.stem for p in DECKS])
def test_pdf_has_one_page_per_slide(built, source):
    from pypdf import PdfReader

    reader = PdfReader(built["out"] / f"{source.stem}.pdf")
    assert len(reader.pages) == expected_slides(source)
    title = slides.read_deck(source).title
    assert title.split(" — ")[0] in reader.pages[0].extract_text()
    box = reader.pages[0].mediabox
    assert float(box.width) / float(box.height) == pytest.approx(slides.WIDTH / slides.HEIGHT, rel=0.02)
