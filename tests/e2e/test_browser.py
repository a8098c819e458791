"""End-to-end tests in a real browser: the user flows of the three pages, on the real app.

One app process serves the whole module (see ``conftest.py``) and the tests run in file
order: upload, ask, administer, hostile upload. Each test that needs a document indexes it
itself when it is missing, so any single test can also run on its own.

Every test saves a screenshot to ``docs/screenshots/`` (shown in the README).
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import ADMIN_PASSWORD, REPO_ROOT, RunningApp

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SAMPLES = REPO_ROOT / "samples"
# `make screenshots` refreshes the README's pictures; a plain test run writes them aside, so
# `make test` leaves the tree clean.
SCREENSHOTS = (
    REPO_ROOT / "docs" / "screenshots"
    if os.environ.get("GROUNDED_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "grounded-screenshots"
)
PAGE_LOAD_MS = 120_000  # the first page of a session builds the services (loads the embedder)
INDEX_MS = 120_000
ANSWER_MS = 180_000  # the first question loads the language model
QUESTION = "When was the Eiffel Tower completed?"

# Records, from the browser itself, what the user saw while Streamlit was running: the text of
# the last chat message each time it changes (and whether a highlight was in it yet), and every
# progress bar text. A MutationObserver sees states that polling from the test could miss.
RECORDER_JS = """
() => {
  window.__e2e = {messages: [], progress: []};
  const record = () => {
    const bars = document.querySelectorAll('[data-testid="stProgress"]');
    for (const bar of bars) {
      const text = bar.innerText.trim();
      const seen = window.__e2e.progress;
      if (text && seen[seen.length - 1] !== text) seen.push(text);
    }
    const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
    if (!messages.length) return;
    const last = messages[messages.length - 1];
    if (!last.querySelector('[data-testid="stChatMessageAvatarAssistant"]')) return;
    const content = last.querySelector('[data-testid="stChatMessageContent"]') || last;
    const snap = {text: content.innerText.trim(), mark: content.querySelector('mark') !== null};
    const shots = window.__e2e.messages;
    const prev = shots[shots.length - 1];
    if (!prev || prev.text !== snap.text || prev.mark !== snap.mark) shots.push(snap);
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


# --- helpers ----------------------------------------------------------------------------------
def wait_idle(page: Page, timeout_ms: float = INDEX_MS) -> None:
    """Wait until the Streamlit script is not running (and the page has settled)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout_ms)
    page.wait_for_timeout(300)  # let the last deltas paint
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout_ms)


def open_page(page: Page, app: RunningApp, path: str, title: str) -> None:
    page.goto(app.url(path))
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible(timeout=PAGE_LOAD_MS)
    wait_idle(page, PAGE_LOAD_MS)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def exactly(text: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


def dataframe(page: Page, column: str) -> Locator:
    """The st.dataframe with a column headed ``column``.

    st.dataframe paints its cells on a canvas; the text is read from the grid's hidden
    accessibility table (hidden, so these locators use CSS, not roles, and check counts
    or text rather than visibility).
    """
    header = page.locator('th[role="columnheader"]', has_text=exactly(column))
    return page.get_by_test_id("stDataFrame").filter(has=header)


def row(table: Locator, name: str) -> Locator:
    """The row of ``table`` whose first cell is ``name``."""
    cell = table.page.locator('td[role="gridcell"][aria-colindex="1"]', has_text=exactly(name))
    return table.locator('tr[role="row"]').filter(has=cell)


def upload_and_index(page: Page, files: list[Path]) -> None:
    """On the Documents page: choose ``files`` in one go, press "Index files", wait for the results."""
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files([str(f) for f in files])
    for f in files:
        expect(page.get_by_test_id("stFileUploader").get_by_text(f.name, exact=True)).to_be_visible()
    button = page.get_by_role("button", name="Index files")
    expect(button).to_be_enabled()
    button.click()
    expect(last_upload_summary(page)).to_be_visible(timeout=INDEX_MS)
    wait_idle(page)


def last_upload_summary(page: Page) -> Locator:
    return page.get_by_test_id("stMarkdownContainer").filter(has_text="Last upload:")


def sign_in_as_admin(page: Page, app: RunningApp) -> None:
    """Open the Admin page and sign in (a browser session stays signed in until reloaded)."""
    open_page(page, app, "/admin", "Admin")
    page.get_by_label("Admin password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Re-index everything")).to_be_visible(timeout=PAGE_LOAD_MS)
    wait_idle(page)


def open_documents_as_admin(page: Page, app: RunningApp) -> None:
    """Uploads need the admin: sign in, then go to Documents in the same session (sidebar link)."""
    sign_in_as_admin(page, app)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Documents").click()
    expect(page.get_by_role("heading", name="Documents", level=1)).to_be_visible(timeout=PAGE_LOAD_MS)
    wait_idle(page, PAGE_LOAD_MS)


def ensure_indexed(page: Page, app: RunningApp, sample: Path) -> None:
    """Index ``sample`` through the Documents page unless it is already in the table."""
    open_documents_as_admin(page, app)
    indexed = dataframe(page, "Indexed at")
    if indexed.count() and row(indexed, sample.name).count():
        return
    upload_and_index(page, [sample])
    expect(row(dataframe(page, "Indexed at"), sample.name)).to_have_count(1)


def recorded(page: Page) -> dict[str, Any]:
    snapshot: dict[str, Any] = page.evaluate("window.__e2e")
    return snapshot


# --- the flows --------------------------------------------------------------------------------
def test_documents_upload_two_files_and_index(page: Page, app_server: RunningApp) -> None:
    open_page(page, app_server, "/documents", "Documents")  # a reader: no upload
    expect(page.get_by_test_id("stFileUploader")).to_have_count(0)
    expect(page.get_by_text("Only the admin may add documents", exact=False)).to_be_visible()
    open_documents_as_admin(page, app_server)
    files = [SAMPLES / "eiffel_tower.pdf", SAMPLES / "printing_press.md"]

    upload_and_index(page, files)

    expect(last_upload_summary(page)).to_contain_text("2 indexed")
    results = dataframe(page, "Result")
    indexed = dataframe(page, "Indexed at")
    for f in files:
        expect(row(results, f.name)).to_contain_text("indexed")
        expect(row(indexed, f.name)).to_have_count(1)
    expect(page.get_by_test_id("stAlert")).to_have_count(0)  # no per-file error
    screenshot(page, "documents.png")


def test_chat_streams_an_answer_with_highlighted_citation(page: Page, app_server: RunningApp) -> None:
    ensure_indexed(page, app_server, SAMPLES / "eiffel_tower.pdf")
    open_page(page, app_server, "/", "Ask your documents")
    page.evaluate(RECORDER_JS)

    box = page.get_by_test_id("stChatInput").locator("textarea")
    box.fill(QUESTION)
    box.press("Enter")

    assistant = page.get_by_test_id("stChatMessage").filter(has=page.get_by_test_id("stChatMessageAvatarAssistant"))
    expect(assistant).to_have_count(1, timeout=INDEX_MS)
    cited = assistant.locator(".grounded-citation").filter(has_text="eiffel_tower.pdf")
    expect(cited.first).to_be_visible(timeout=ANSWER_MS)
    wait_idle(page, ANSWER_MS)

    # While generating, the answer grew in place before the final, checked answer replaced it.
    shots = recorded(page)["messages"]
    streamed = [s["text"] for s in shots if s["text"] and not s["mark"] and not s["text"].startswith("Loading the")]
    assert streamed, f"no partial answer was shown before the cited one: {shots}"
    grew = any(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(streamed))
    assert grew, f"the answer did not grow while streaming: {shots}"

    # The final answer: cites a source, and answers the question.
    answer_text = assistant.get_by_test_id("stMarkdown").first
    expect(answer_text).to_contain_text(re.compile(r"\[\d+\]"))
    expect(answer_text).to_contain_text("1889")
    expect(page.get_by_test_id("stChatMessage").filter(has_text=QUESTION).first).to_be_visible()

    # Its source: file and page, with the supporting span highlighted.
    expect(cited.first).to_contain_text("page 1")
    mark = cited.first.locator("mark")
    expect(mark.first).to_be_visible()
    assert mark.first.inner_text().strip(), "the highlight is empty"
    screenshot(page, "chat.png")


def ask(page: Page, question: str, n: int) -> Locator:
    """Type ``question`` in the chat box and wait for the ``n``-th answer to settle."""
    box = page.get_by_test_id("stChatInput").locator("textarea")
    box.fill(question)
    box.press("Enter")
    assistant = page.get_by_test_id("stChatMessage").filter(has=page.get_by_test_id("stChatMessageAvatarAssistant"))
    expect(assistant).to_have_count(n, timeout=ANSWER_MS)
    wait_idle(page, ANSWER_MS)
    return assistant.nth(n - 1)


def highlighted_pixels(page: Page, img: Locator) -> int:
    """Pixels of the page image in the highlight's yellow (white paper under a translucent
    yellow box: red and green high, blue well below them)."""
    from io import BytesIO

    from PIL import Image

    src = img.get_attribute("src") or ""
    origin = "/".join(page.url.split("/")[:3])  # http://127.0.0.1:port
    data = page.request.get(src if src.startswith("http") else origin + src).body()
    rgb = Image.open(BytesIO(data)).convert("RGB")
    pixels: list[tuple[int, int, int]] = list(rgb.getdata())
    return sum(1 for r, g, b in pixels if r > 200 and g > 180 and b < r - 60)


def test_a_citation_opens_its_source_and_a_follow_up_names_what_it_refers_to(
    page: Page, app_server: RunningApp
) -> None:
    ensure_indexed(page, app_server, SAMPLES / "eiffel_tower.pdf")
    ensure_indexed(page, app_server, SAMPLES / "printing_press.md")
    open_page(page, app_server, "/", "Ask your documents")

    first = ask(page, QUESTION, 1)
    first.get_by_role("button", name=re.compile(r"Open \[\d\] eiffel_tower\.pdf")).first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_test_id("stImage").locator("img")).to_be_visible(timeout=PAGE_LOAD_MS)
    expect(dialog.get_by_role("button", name="Download the original")).to_be_visible()
    img = dialog.get_by_test_id("stImage").locator("img")
    box = img.bounding_box()
    assert box and box["width"] > 300, box  # a page, not an icon
    assert highlighted_pixels(page, img) > 500, "the page image shows no highlighted span"
    screenshot(page, "source.png")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    follow = ask(page, "How often is it repainted?", 2)
    expect(follow.get_by_text(re.compile("Searched for: How often is the Eiffel Tower repainted"))).to_be_visible()
    expect(follow.locator(".grounded-citation").filter(has_text="page 2").first).to_be_visible()
    screenshot(page, "follow-up.png")

    md = ask(page, "Who invented the printing press with movable type in Europe?", 3)
    md.get_by_role("button", name=re.compile(r"Open \[\d\] printing_press\.md")).first.click()
    dialog = page.get_by_role("dialog")
    mark = dialog.frame_locator("iframe").locator("mark#cited")
    expect(mark).to_be_visible(timeout=PAGE_LOAD_MS)
    assert mark.inner_text().strip(), "the marked passage is empty"


def test_admin_needs_password_and_reindexes(page: Page, app_server: RunningApp) -> None:
    ensure_indexed(page, app_server, SAMPLES / "eiffel_tower.pdf")
    open_page(page, app_server, "/admin", "Admin")
    reindex = page.get_by_role("button", name="Re-index everything")
    password = page.get_by_label("Admin password")
    sign_in = page.get_by_role("button", name="Sign in")

    # A wrong password: refused, nothing admin shown.
    password.fill("not-the-password")
    sign_in.click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Wrong password")).to_be_visible()
    wait_idle(page)
    expect(reindex).to_have_count(0)
    expect(page.get_by_role("heading", name="Index")).to_have_count(0)

    # The right one: statistics, models and the re-index button; the password is nowhere in the page.
    password.fill(ADMIN_PASSWORD)
    sign_in.click()
    expect(reindex).to_be_visible()
    wait_idle(page)
    documents = page.get_by_test_id("stMetric").filter(has_text="Documents")
    expect(documents.get_by_test_id("stMetricValue")).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(page.get_by_test_id("stMetric").filter(has_text="Chunks").get_by_test_id("stMetricValue")).to_have_text(
        re.compile(r"^[1-9]\d*$")
    )
    expect(page.get_by_role("heading", name="Models and data")).to_be_visible()
    models = page.get_by_role("listitem")
    expect(models.filter(has_text="Embedding model:").filter(has_text=re.compile("MiniLM", re.I))).to_be_visible()
    expect(models.filter(has_text="Generator:").filter(has_text=re.compile("Qwen2.5", re.I))).to_be_visible()
    expect(page.get_by_label("Admin password")).to_have_count(0)
    assert ADMIN_PASSWORD not in page.content()

    # Re-index: a progress bar, then the report.
    page.evaluate(RECORDER_JS)
    reindex.click()
    report = page.get_by_test_id("stAlert").filter(has_text="Re-indexed")
    expect(report).to_be_visible(timeout=INDEX_MS)
    wait_idle(page)
    expect(report).to_contain_text(re.compile(r"Re-indexed [1-9]\d* document\(s\) into [1-9]\d* chunks in [\d.]+ s"))
    progress = recorded(page)["progress"]
    # a small index may finish before the first poll: "starting…" is then all there was to show
    assert any(p.startswith("Re-index: ") for p in progress), f"no progress was shown: {progress}"
    assert ADMIN_PASSWORD not in page.content()
    screenshot(page, "admin.png")


def test_hostile_upload_reports_the_bad_file_and_indexes_the_good_one(
    page: Page, app_server: RunningApp, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj <<")
    good = tmp_path / "lighthouse_notes.txt"
    good.write_text(
        "The lighthouse on the northern cape was first lit in 1872. Its lamp was converted to "
        "electricity in 1931 and the last keeper left in 1998, when the light became automatic.\n",
        encoding="utf-8",
    )
    open_documents_as_admin(page, app_server)

    upload_and_index(page, [broken, good])

    expect(last_upload_summary(page)).to_contain_text("1 indexed")
    expect(last_upload_summary(page)).to_contain_text("1 failed")
    error = page.get_by_test_id("stAlert").filter(has_text="broken.pdf")
    expect(error).to_have_count(1)
    expect(error).to_contain_text(re.compile(r"damaged|cannot be read", re.I))
    expect(row(dataframe(page, "Result"), good.name)).to_contain_text("indexed")
    indexed = dataframe(page, "Indexed at")
    expect(row(indexed, good.name)).to_have_count(1)
    expect(row(indexed, broken.name)).to_have_count(0)
    screenshot(page, "upload-error.png")


def test_a_remote_image_in_a_document_is_never_fetched(page: Page, app_server: RunningApp, tmp_path: Path) -> None:
    beacon = "203.0.113.5"  # TEST-NET-3: the browser must never ask for it
    notes = tmp_path / "harbour_notes.txt"
    notes.write_text(
        f"The harbour beacon was rebuilt in 1921 ![track](http://{beacon}/pixel.png?who=reader) after the storm. "
        f"[Read more](http://{beacon}/more) Its first keeper was Anna Holm.\n",
        encoding="utf-8",
    )
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    open_documents_as_admin(page, app_server)
    upload_and_index(page, [notes])
    open_page(page, app_server, "/", "Ask your documents")

    box = page.get_by_test_id("stChatInput").locator("textarea")
    box.fill("When was the harbour beacon rebuilt?")
    box.press("Enter")
    assistant = page.get_by_test_id("stChatMessage").filter(has=page.get_by_test_id("stChatMessageAvatarAssistant"))
    expect(assistant.locator(".grounded-citation").first).to_be_visible(timeout=ANSWER_MS)
    wait_idle(page, ANSWER_MS)

    assert page.locator(f'img[src*="{beacon}"]').count() == 0
    assert page.locator(f'a[href*="{beacon}"]').count() == 0
    assert not [u for u in requested if beacon in u], requested
