"""The documentation points only at files that exist, and the repository describes the product.

Links (``[text](path)``) and backticked repository paths in the Markdown files must name
files of the repository; no tracked text file may narrate how the software was built
(numbered work sessions or rounds, issue numbers): that history lives in git.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HISTORY_TALK = re.compile(r"\b(sessions? [0-9]+|session-[0-9]|issue[- #]?[0-9]+|round [0-9]+)\b",
                          re.IGNORECASE)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
TOP_DIRS = ("ocppj", "csms", "simulators", "fleet", "tests", "bench", "docs", "deploy", "dashboards",
            "scripts")
_TOP = "|".join(TOP_DIRS)
_EXT = "py|md|json|toml|ya?ml|conf|service|png|svg|js|css|html|sh|txt"
REPO_PATH = re.compile(rf"`((?:{_TOP})/[\w./@-]+\.(?:{_EXT}))`")
MD_MENTION = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*[\w-]+\.md)\b")


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p]


TRACKED = _tracked()
MARKDOWN = sorted(p for p in TRACKED if p.endswith(".md") and (p == "README.md" or p.startswith(("docs/",
                                                                                                   "deploy/"))))


def _text(rel: str) -> str | None:
    """The file's text, or None when it is binary."""
    data = (ROOT / rel).read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def test_the_docs_are_found() -> None:
    assert "README.md" in MARKDOWN and "docs/performance.md" in MARKDOWN
    assert any(p.startswith("docs/adr/") for p in MARKDOWN)


@pytest.mark.parametrize("doc", MARKDOWN)
def test_relative_links_point_at_files_in_the_repository(doc: str) -> None:
    missing = []
    for target in LINK.findall(_without_code_blocks((ROOT / doc).read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        path = (ROOT / doc).parent / target.split("#", 1)[0]
        if not path.resolve().is_relative_to(ROOT) or not path.exists():
            missing.append(target)
    assert not missing, f"{doc} links to files that are not in the repository: {missing}"


@pytest.mark.parametrize("doc", MARKDOWN)
def test_backticked_repository_paths_exist(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    missing = sorted({p for p in REPO_PATH.findall(text) if not (ROOT / p).exists()})
    assert not missing, f"{doc} names files that are not in the repository: {missing}"


@pytest.mark.parametrize("doc", MARKDOWN)
def test_mentioned_markdown_files_exist(doc: str) -> None:
    """``ARCHITECTURE.md`` or ``shared/NOTES.md`` in the text must be files of the repository too."""
    text = re.sub(r"https?://\S+", "", (ROOT / doc).read_text(encoding="utf-8"))
    here = (ROOT / doc).parent
    missing = sorted({m for m in MD_MENTION.findall(text) if not any((d / m).exists() for d in (ROOT, here))})
    assert not missing, f"{doc} mentions Markdown files that are not in the repository: {missing}"


def test_no_tracked_file_narrates_the_history_of_its_making() -> None:
    found = []
    for rel in TRACKED:
        text = _text(rel)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            m = HISTORY_TALK.search(line)
            if m:
                found.append(f"{rel}:{n}: {m.group(0)!r}")
    assert not found, "history belongs in git, not in the files:\n" + "\n".join(found)
