"""The documentation (README.md and docs/*.md) is tested like code.

- Every ```python block marked ``<!-- test: run -->`` (on the line before its fence) runs
  as written: the marked blocks of one page in page order, in one namespace (a later block
  may use what an earlier one defined), in a temporary folder holding the files the
  examples name: ``photo.jpg``, ``a.jpg``, ``b.jpg`` (the bundled sample images) and
  ``clip.mp4`` (a short clip of them); offline (``HF_HUB_OFFLINE=1``).
- Every relative link points to an existing file, and its ``#anchor`` to a heading of
  the page it names (GitHub's anchors).
- docs/README.md links every page of docs/, and README.md links docs/README.md.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
SAMPLES = REPO / "poselit" / "assets" / "samples"
MARKER = "<!-- test: run -->"

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def name(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with their 1-based numbers."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def marked_blocks(text: str) -> list[tuple[int, str]]:
    """The marked ```python blocks of a page: (line of the fence, code)."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        fence = number + 1
        while fence < len(lines) and not lines[fence].strip():
            fence += 1
        if fence >= len(lines) or lines[fence].strip() != "```python":
            raise AssertionError(f"line {number + 1}: {MARKER} is not followed by a ```python block")
        end = next((i for i in range(fence + 1, len(lines)) if lines[i].strip() == "```"), None)
        assert end is not None, f"line {fence + 1}: the ```python block is not closed"
        blocks.append((fence + 1, "\n".join(lines[fence + 1:end]) + "\n"))
    return blocks


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: link text kept, lower case, punctuation dropped
    (letters, digits, ``_``, ``-`` and spaces stay), spaces become hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated one gets ``-1``, ``-2``, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


RUNNABLE = [page for page in PAGES if marked_blocks(page.read_text(encoding="utf-8"))]


def test_the_docs_pages_have_runnable_examples():
    assert {"README.md", "docs/predict.md", "docs/models.md"} <= {name(page) for page in RUNNABLE}


@pytest.fixture
def example_folder(tmp_path, monkeypatch):
    """A temporary working folder with the files the examples name, offline, one thread."""
    import cv2
    import torch

    from poselit.video import FOURCC

    for target, sample in (("photo.jpg", "astronaut.jpg"), ("a.jpg", "astronaut.jpg"), ("b.jpg", "camera.jpg")):
        shutil.copy(SAMPLES / sample, tmp_path / target)
    frames = [cv2.resize(cv2.imread(str(SAMPLES / sample)), (160, 160)) for sample in ("astronaut.jpg", "camera.jpg") * 2]
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*FOURCC), 10.0, (160, 160))
    for frame in frames:
        writer.write(frame)
    writer.release()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(threads)


@pytest.mark.parametrize("page", RUNNABLE, ids=name)
def test_marked_examples_run_as_written(page, example_folder):
    namespace: dict = {"__name__": "__docs__"}
    for line, code in marked_blocks(page.read_text(encoding="utf-8")):
        exec(compile(code, f"{name(page)}:{line}", "exec"), namespace)  # noqa: S102 (the docs' own code)


def test_a_marker_must_mark_a_python_block():
    assert [code for _, code in marked_blocks(f"{MARKER}\n\n```python\nx = 1\n```\n")] == ["x = 1\n"]
    with pytest.raises(AssertionError, match="not followed by a ```python block"):
        marked_blocks(f"{MARKER}\n```bash\nls\n```\n")


def test_github_anchors():
    assert github_anchor("Training on a GPU") == "training-on-a-gpu"
    assert github_anchor("Data: conventions, datasets, the pipeline") == "data-conventions-datasets-the-pipeline"
    assert github_anchor("`poselit eval` and PCK@0.2") == "poselit-eval-and-pck02"


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_relative_links_point_to_existing_files_and_headings(page):
    broken = []
    for number, line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{name(page)}:{number}: {target}: no such file")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{name(page)}:{number}: {target}: no heading with that anchor")
    assert not broken, "\n".join(broken)


def test_the_docs_index_links_every_page_and_the_readme_links_the_index():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    linked = {target.partition("#")[0] for target in LINK.findall(index)}
    assert {page.name for page in DOCS.glob("*.md")} - {"README.md"} <= linked
    assert "docs/README.md" in {target.partition("#")[0] for target in LINK.findall((REPO / "README.md").read_text())}
