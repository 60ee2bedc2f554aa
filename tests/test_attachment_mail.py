"""Attachments and mail, against a real server and a real SMTP sink: a reply mail links to
the agent's files with signed, expiring links; an answer by mail keeps its files under the
same rules as an upload, and names those it refused."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest
from PIL import Image

from tests.mail_sink import MailSink
from tests.support import ServerProcess, create_site
from tests.test_mail import address, api, mail_env, submit_form

REPLY_DOMAIN = "reply.acme.test"


@pytest.fixture(scope="module")
def mailer(tmp_path_factory: pytest.TempPathFactory, sink: MailSink
           ) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("attach-mail") / "widget.db",
                            env=mail_env(sink, WIDGET_MAIL_REPLY_DOMAIN=REPLY_DOMAIN))
    process.start()
    yield process
    process.stop()


def plain_text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 29.0)
    out = io.BytesIO()
    Image.new("RGB", (12, 12), "purple").save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_reply_mails_link_files_and_answers_by_mail_keep_theirs(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    ada = address("files")
    submit_form(mailer, site, ada)
    sink.wait_for(ada)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    with api(mailer, site) as client:
        uploaded = client.post("/api/v1/attachments",
                               files={"file": ("guide.pdf", pdf)}).json()["attachment"]
        assert client.post("/api/v1/tickets/1/messages", json={
            "body": "The guide is attached", "attachments": [uploaded["id"]]}
            ).status_code == 201
    _, reply = sink.wait_for(ada, 2)
    text = plain_text(reply)
    assert "Attachment: guide.pdf" in text
    link = re.search(r"(http://\S+/attachments/att_\S+\?link=\S+)", text)
    assert link, text
    served = httpx.get(link.group(1))  # no credential but the link itself
    assert served.status_code == 200 and served.content == pdf
    assert served.headers["content-security-policy"] == "sandbox; default-src 'none'"
    forged = httpx.get(link.group(1)[:-3] + "abc")
    assert forged.status_code == 404
    other_id = link.group(1).replace(uploaded["id"], "att_" + "A" * 24)
    assert httpx.get(other_id).status_code == 404  # a link names one file only

    answer = EmailMessage()
    answer["From"] = f"Ada <{ada}>"
    answer["To"] = reply["Reply-To"].addresses[0].addr_spec
    answer["Subject"] = "Re: " + str(reply["Subject"])
    answer["Message-ID"] = f"<answer-{uuid.uuid4().hex}@example.com>"
    answer.set_content("Here is my screen.")
    answer.add_attachment(jpeg_with_gps(), maintype="image", subtype="jpeg",
                          filename="screen.jpg")
    answer.add_attachment(b"<html><script>alert(1)</script></html>", maintype="image",
                          subtype="png", filename="invoice.png")
    with api(mailer, site) as client:
        taken = client.post("/api/v1/inbound-email", content=answer.as_bytes())
        assert taken.status_code == 202, taken.text
        thread = client.get("/api/v1/tickets/1").json()["messages"]
        last = thread[-1]
        assert last["author"]["type"] == "visitor"
        assert last["body"].startswith("Here is my screen.")
        assert "[Attachments not kept: invoice.png (" in last["body"]
        kept, = last["attachments"]
        assert kept["name"] == "screen.jpg" and kept["content_type"] == "image/jpeg"
        image = client.get(kept["url"])
    assert image.status_code == 200
    assert not Image.open(io.BytesIO(image.content)).getexif().get_ifd(0x8825)
