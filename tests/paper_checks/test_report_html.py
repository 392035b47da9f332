"""The run report as a reader's browser shows it: a page rendered from synthetic claims and a real (small) figure,
loaded in headless Chromium at 1400 px.  The DOM Chromium builds must put the verdict and the claims not supported
before the folded passing claims, reference nothing outside the file, caption every figure with words (not its
file name) and print each distinct tolerance text once."""

from __future__ import annotations

import html
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from paper_checks import _plot
from paper_checks.claims import Claim
from paper_checks.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`; "
                                                         ".ci/run installs it)")

#: A tolerance of about the length of the real ones, shared by many claims (the report used to repeat it per row).
SHARED = ("relative error of the closed form <= 1e-3 at every measured epoch of the terminal phase, on the lambda = 0 "
          "terms, both sides in float64 arithmetic")


def _claims() -> list[Claim]:
    claims = [Claim(id=f"symbolic.identity_{i}", statement=f"symbolic identity {i} holds", source="math §3.2",
                    check="SymPy simplifies the difference to 0", tolerance="the difference simplifies to 0",
                    status="pass", measured={"checks": 3}) for i in range(6)]
    claims += [Claim(id=f"empirical.observation_{i}", statement=f"observation {i} of the paper", source="math §7.2",
                     check="compared on the logged epochs", tolerance=SHARED, status="pass",
                     measured={"max_rel_error": 2e-4 * (i + 1)}) for i in range(10)]
    claims += [
        Claim(id="empirical.snr_follows_closed_form", statement="the SNR singular values follow the closed form",
              source="math §6.3", check="least-squares fit of the closed form", tolerance="min_j R^2 >= 0.9",
              status="fail", measured={"r2_min": 0.678}),
        Claim(id="empirical.l_perp_negligible", statement="L_perp is negligible", source="math §4",
              check="max ratio in the terminal phase", tolerance=SHARED, status="fail", measured={"max": 6.18}),
        Claim(id="empirical.no_terminal_phase", statement="a terminal-phase statement", source="math §7.2",
              check="terminal phase", tolerance="median over the terminal phase", status="n/a",
              detail="the run never reached zero training error"),
        Claim(id="dynamics.crashes", statement="a dynamics statement", source="math §6.4", check="integrate",
              tolerance="the integration raises nothing", status="error", measured={"error": "ZeroDivisionError: boom"},
              detail="Traceback (most recent call last):\nZeroDivisionError: boom"),
    ]
    return claims


class _Elements(HTMLParser):
    """Start tags in document order: (tag, attributes) and the text of every <figcaption>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.captions: list[str] = []
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_caption = self._in_caption or tag == "figcaption"
        if tag == "figcaption":
            self.captions.append("")

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self._in_caption = False

    def handle_data(self, data):
        if self._in_caption:
            self.captions[-1] += data

    def index(self, tag: str | None = None, **attrs: str) -> int:
        for i, (t, a) in enumerate(self.tags):
            if (tag is None or t == tag) and all(a.get(k) == v for k, v in attrs.items()):
                return i
        raise AssertionError(f"no <{tag or '*'} {attrs}> in the page")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1400,1000", *args],
        capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    (out / "figures").mkdir()
    plt = _plot.plt()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.loglog([1, 10, 100], [1, 3, 9], "o")
    figure = _plot.save(fig, out / "figures" / "compare_snr.png", dpi=40)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [1, 0])
    unknown = _plot.save(fig, out / "figures" / "my_extra_plot.png", dpi=40)
    ladder = {"sentence": "on the exact flow the forward prediction misses by 6e-14%",
              "table_md": "| rung | system | forward error |\n|---|---|---|\n| (a) | exact flow | 6e-14% |",
              "rows": [{"rung": "a"}], "scaled": None}
    paths = write_report(out, _claims(), figures=[figure, unknown], ladder=ladder,
                         context={"training run": "runs/x", "stage times (s)": {"training": 12.5, "report": 0.4}})
    url = paths["html"].resolve().as_uri()
    dom = _chromium(out, "--dump-dom", url).stdout
    shot = out / "shot.png"
    _chromium(out, f"--screenshot={shot}", url)
    parsed = _Elements()
    parsed.feed(dom)
    return paths, dom, parsed, shot


def test_the_verdict_and_the_claims_not_supported_come_before_the_folded_claims(page):
    paths, dom, p, shot = page
    assert shot.stat().st_size > 10_000  # Chromium drew the page (a blank 1400 x 1000 PNG is about 6 kB)
    verdict, ladder = p.index("section", id="verdict"), p.index("section", id="ladder")
    failed = p.index("article", id="claim-empirical-snr_follows_closed_form")
    error = p.index("article", id="claim-dynamics-crashes")
    folded = p.index("details", id="group-symbolic")
    assert verdict < ladder < p.index("section", id="figures") < failed < error < folded
    # the verdict names the counts in words and links the claims the run does not support
    text = dom[dom.index('id="verdict"'):dom.index('id="ladder"')]
    assert "Of 20 claims, 16 pass, 2 fail, 1 cannot be evaluated on this input (n/a) and 1 raised an error" in text
    assert 'href="#claim-empirical-l_perp_negligible"' in text and 'href="#claim-dynamics-crashes"' in text
    # the numbers of the claims not supported are in their cards, before the folded ones
    assert dom.index("r2_min=0.678") < dom.index('id="group-symbolic"')
    # the passing claims are folded (closed <details>) and the set-up is a definition list with a stage-time table
    assert p.tags[folded][1].get("open") is None
    assert p.index("dl") > folded and "<td>training</td><td>12.5</td>" in dom.replace("\n", "")


def test_the_page_references_nothing_outside_itself(page):
    _, dom, p, _ = page
    for tag, attrs in p.tags:
        assert tag not in ("link", "script", "iframe", "object", "embed"), tag
        for key in ("src", "srcset", "data", "poster"):
            if attrs.get(key) is not None:
                assert attrs[key].startswith("data:image/png;base64,"), (tag, key, attrs[key][:60])
        if attrs.get("href") is not None:
            assert attrs["href"].startswith("#"), (tag, attrs["href"])
    assert "url(" not in dom and "@import" not in dom
    assert sum(tag == "img" for tag, _ in p.tags) == 2


def test_every_figure_has_a_caption_in_words(page):
    _, _, p, _ = page
    assert len(p.captions) == 2
    for caption in p.captions:
        words = caption.split()
        assert len(words) >= 5 and not any(w.endswith(".png") for w in words), caption
        assert caption.strip() not in ("compare_snr", "my_extra_plot"), caption
    assert "observed (dots)" in p.captions[0]  # what to look at in compare_snr.png


def test_each_distinct_tolerance_text_appears_once(page):
    paths, dom, _, _ = page
    for text in {c.tolerance for c in _claims()}:
        assert dom.count(html.escape(text, quote=False)) == 1, text
    md = paths["md"].read_text()
    assert md.count(SHARED) == 1
    # report.md keeps the page's order
    order = [md.index(h) for h in ("# NC-MSE paper checks", "## Theory against training", "## Figures",
                                   "## Not supported by this run", "## Errors (toolkit bugs)", "## Symbolic claims",
                                   "## Set-up")]
    assert order == sorted(order)
