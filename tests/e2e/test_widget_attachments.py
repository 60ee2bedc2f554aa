"""Attachments in a real browser: a visitor attaches through the file chooser, by pasting and
by dropping, sees the upload's progress and a preview, sends; the agent sees the files in
the console and downloads them; an agent attaches a file and the visitor sees it live; a
refused file is explained. Files are made inside the page (a DataTransfer holding a File),
so paste and drop run the widget's own event handlers on real DOM events.
"""

from __future__ import annotations

import base64
import struct
import uuid
import zlib
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.e2e.test_console_browser import (
    agent,
    live,
    open_widget,
    serious_violations,
    start_request,
    ticket_url,
)
from tests.e2e.test_widget_a11y import serious_widget_violations
from tests.e2e.test_widget_isolation import WATCH_VIOLATIONS, collect_console_errors
from tests.support import ServerProcess, Site

__all__ = ["agent"]  # the signed-in agent fixture of the console's browser tests

# paste or drop: a File built in the page from base64, handed over in a DataTransfer
GIVE_FILE = """(target, {kind, name, type, data}) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, {type}));
    const events = kind === "paste" ? [new ClipboardEvent("paste", {clipboardData: transfer,
        bubbles: true, cancelable: true, composed: true})]
        : ["dragenter", "dragover", "drop"].map((event) => new DragEvent(event, {
            dataTransfer: transfer, bubbles: true, cancelable: true, composed: true}));
    return events.map((event) => target.dispatchEvent(event));
}"""


def png(width: int = 3, height: int = 2) -> bytes:
    """A valid PNG (the server reads every image it keeps)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def give(target: Locator, kind: str, name: str, type_: str, data: bytes) -> None:
    """Paste (``kind`` "paste") or drop ("drop") a file with these bytes onto ``target``."""
    handled = target.evaluate(GIVE_FILE, {"kind": kind, "name": name, "type": type_,
                                          "data": base64.b64encode(data).decode()})
    # the widget cancels what it takes: a paste's default or a drop's navigation to the file
    assert handled[-1] is False, f"the {kind} was not taken"


def ready(widget: Locator, name: str) -> None:
    """Wait until the widget says the upload of ``name`` is done."""
    status = widget.get_by_role("status").filter(has_text=f"{name} is ready to send.")
    expect(status).to_be_visible()


def image_loaded(image: Locator) -> None:
    expect(image).to_be_visible()
    image.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                                 arg=image.element_handle())


def test_visitor_attaches_by_chooser_paste_and_drop_and_the_agent_downloads(
    page: Page, agent: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site,
    tmp_path: Path,
) -> None:
    widget = open_widget(page, host_pages, server, widget_site)
    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill("The chart is cut off")

    # the file chooser, on the new request
    shot = tmp_path / "chart.png"
    shot.write_bytes(png(4, 3))
    with page.expect_file_chooser() as chooser:
        widget.get_by_role("button", name="Attach files").click()
    assert chooser.value.is_multiple()
    chooser.value.set_files(str(shot))
    tray = widget.get_by_role("list", name="Attached files")
    expect(tray.locator("img")).to_have_count(1)  # the preview, before sending
    assert tray.locator("img").get_attribute("src").startswith("blob:")
    ready(widget, "chart.png")
    widget.get_by_role("button", name="Send", exact=True).click()
    log = widget.get_by_role("log")
    expect(log).to_contain_text("received")
    sent = log.locator(".message.visitor", has_text="The chart is cut off")
    image_loaded(sent.get_by_role("img", name="chart.png"))  # now the served file
    expect(tray).to_have_count(0)  # the view moved on to the conversation

    # a pasted screenshot and a dropped log, in one message: progress, then both ready
    reply = widget.get_by_label("Your message")
    give(reply, "paste", "image.png", "image/png", png(5, 5))
    log_text = ("line of a log\n" * 30000).encode()  # 420 kB: slow enough to see progress
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                  "downloadThroughput": -1,
                                                  "uploadThroughput": 200 * 1024})
    give(widget.locator("form.composer"), "drop", "app.log", "text/plain", log_text)
    progress = widget.get_by_role("progressbar", name="Uploading app.log")
    expect(progress).to_be_visible()
    page.wait_for_function("(bar) => bar.value > 0 && bar.value < 100",
                           arg=progress.element_handle())
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                  "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    tray = widget.get_by_role("list", name="Attached files")
    expect(tray.locator("li")).to_have_count(2)
    ready(widget, "app.log")
    expect(progress).to_have_count(0)
    assert serious_widget_violations(page) == []  # the list of files, its buttons and status
    reply.fill("Screenshot and log attached")
    reply.press("Enter")
    second = log.locator(".message.visitor", has_text="Screenshot and log attached")
    expect(second).to_contain_text("Sent")
    image_loaded(second.get_by_role("img", name="image.png"))
    expect(second.get_by_role("link", name="app.log")).to_contain_text("410 KB")

    # the agent: both messages' files in the ticket view, images shown, the log downloaded
    agent.goto(ticket_url(server, widget_site, 1))
    thread = agent.locator("#thread")
    image_loaded(thread.get_by_role("img", name="chart.png, "))
    image_loaded(thread.get_by_role("img", name="image.png, "))
    with agent.expect_download() as download:
        thread.get_by_role("link", name="app.log").click()
    assert download.value.suggested_filename == "app.log"
    assert Path(download.value.path()).read_bytes() == log_text

    # and live: a file sent while the agent looks on
    live(agent)
    give(reply, "paste", "later.png", "image/png", png(2, 2))
    ready(widget, "later.png")
    reply.press("Enter")  # files alone make a message
    image_loaded(thread.get_by_role("img", name="later.png, "))

    # the visitor downloads the log back from the thread
    with page.expect_download() as again:
        second.get_by_role("link", name="app.log").click()
    assert Path(again.value.path()).read_bytes() == log_text


def test_a_refused_file_is_explained_and_nothing_is_sent_with_it(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site, tmp_path: Path
) -> None:
    widget = open_widget(page, host_pages, server, widget_site)
    start_request(widget, "Please look at this")
    reply = widget.get_by_label("Your message")
    alert = widget.get_by_role("alert")

    # markup under an image's name, chosen with the keyboard: the type comes from the content
    fake = tmp_path / "cat.png"
    fake.write_bytes(b"<html><script>alert(1)</script></html>")
    reply.press("Tab")
    expect(widget.get_by_role("button", name="Attach files")).to_be_focused()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(fake))
    expect(alert).to_contain_text("Could not attach cat.png:")
    expect(widget.get_by_role("list", name="Attached files").locator("li")).to_have_count(0)

    # past the size limit (10 MB by default): a 413, said as such
    page.evaluate("""() => { window.bigFile = new File([new Uint8Array(11 * 1024 * 1024)],
        "huge.zip", {type: "application/zip"}); }""")
    reply.evaluate("""(target) => {
        const transfer = new DataTransfer();
        transfer.items.add(window.bigFile);
        target.dispatchEvent(new ClipboardEvent("paste", {clipboardData: transfer,
            bubbles: true, cancelable: true, composed: true}));
    }""")
    expect(alert).to_contain_text("Could not attach huge.zip: it is too big")

    # a file the visitor takes back is not sent
    give(reply, "paste", "oops.png", "image/png", png())
    ready(widget, "oops.png")
    widget.get_by_role("button", name="Remove oops.png").click()
    expect(widget.get_by_role("status").filter(has_text="oops.png removed.")).to_be_visible()
    expect(reply).to_be_focused()
    expect(widget.get_by_role("list", name="Attached files").locator("li")).to_have_count(0)

    reply.fill("Only words this time")
    reply.press("Enter")
    message = widget.get_by_role("log").locator(".message.visitor", has_text="Only words")
    expect(message).to_contain_text("Sent")
    expect(message.locator("ul")).to_have_count(0)


def test_agent_attaches_in_the_console_and_the_visitor_sees_it_live(
    page: Page, agent: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site,
    tmp_path: Path,
) -> None:
    widget = open_widget(page, host_pages, server, widget_site)
    start_request(widget, "How do I configure the export?")
    agent.goto(ticket_url(server, widget_site, 1))
    live(agent)

    guide = tmp_path / "export-guide.txt"
    guide.write_text("Step 1: open Settings\nStep 2: choose CSV\n")
    agent.get_by_label("Attach files").set_input_files(str(guide))
    tray = agent.get_by_role("list", name="Files to send")
    expect(tray).to_contain_text("export-guide.txt")
    expect(agent.locator("#reply-files-status")).to_have_text("export-guide.txt is ready to send.")
    give(agent.locator("#reply-form"), "drop", "where.png", "image/png", png(6, 4))
    expect(tray.locator("img")).to_have_count(1)
    expect(agent.locator("#reply-files-status")).to_have_text("where.png is ready to send.")
    give(agent.get_by_label("Your reply"), "paste", "pasted.png", "image/png", png(2, 3))
    expect(agent.locator("#reply-files-status")).to_have_text("pasted.png is ready to send.")
    agent.get_by_role("button", name="Remove pasted.png").click()
    expect(tray.locator("li")).to_have_count(2)
    agent.get_by_label("Your reply").fill("Here is the guide and a screenshot")
    agent.get_by_role("button", name="Send reply").click()

    thread = agent.locator("#thread")
    expect(thread).to_contain_text("Here is the guide and a screenshot")
    image_loaded(thread.get_by_role("img", name="where.png, "))
    expect(thread.get_by_role("link", name="export-guide.txt")).to_be_visible()
    assert serious_violations(agent) == []

    log = widget.get_by_role("log")
    answer = log.locator(".message.agent", has_text="Here is the guide")
    expect(answer).to_be_visible()  # live, no reload
    image_loaded(answer.get_by_role("img", name="where.png"))
    with page.expect_download() as download:
        answer.get_by_role("link", name="export-guide.txt").click()
    assert download.value.suggested_filename == "export-guide.txt"
    assert Path(download.value.path()).read_text() == guide.read_text()


def test_attachments_under_a_strict_csp_that_allows_blob_images(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    """embedding.md's strict policy with `img-src 'self' blob:`: no violation, no error."""
    ws_server = server.url.replace("http://", "ws://")
    csp = (f"default-src 'self'; script-src 'self' {server.url}; "
           f"connect-src {server.url} {ws_server}; style-src 'self'; img-src 'self' blob:")
    url = host_pages.add(f"/csp-att-{uuid.uuid4().hex[:8]}", host_page(server, widget_site),
                         {"Content-Security-Policy": csp})
    page.add_init_script(WATCH_VIOLATIONS)
    errors = collect_console_errors(page)
    page.goto(url)
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    start_request(widget, "Under a strict policy")
    reply = widget.get_by_label("Your message")
    give(reply, "paste", "strict.png", "image/png", png(3, 3))
    ready(widget, "strict.png")
    reply.press("Enter")
    sent = widget.get_by_role("log").locator(".message.visitor", has=page.locator("img"))
    image_loaded(sent.get_by_role("img", name="strict.png"))
    assert page.evaluate("window.__violations") == []
    assert errors == []
