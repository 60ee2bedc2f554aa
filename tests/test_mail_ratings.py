"""The solved mail asks "How did we do?", against a real server and a real SMTP sink: five
signed links, each a page that records nothing (mail scanners prefetch links) until its
form is posted; a forged link records nothing; a site with ratings off mails no links."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.mail_sink import MailSink, text_of, wait_until
from tests.support import ServerProcess, create_site, run_cli
from tests.test_mail import address, api, mail_env, outbox, submit_form

LINKS = re.compile(r"(http://\S+/api/widget/v1/ratings/[A-Za-z0-9_.\-]+)\?score=(\d)")


@pytest.fixture(scope="module")
def mailer(tmp_path_factory: pytest.TempPathFactory, sink: MailSink
           ) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("ratings") / "widget.db",
                            env=mail_env(sink))
    process.start()
    yield process
    process.stop()


def solve(client: httpx.Client) -> None:
    answer = client.patch("/api/v1/tickets/1", json={"status": "solved"})
    assert answer.status_code == 200, answer.text


def test_the_solved_mail_links_show_a_form_whose_post_records_the_rating(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("rated")
    submit_form(mailer, site, to)
    sink.wait_for(to)
    with api(mailer, site) as client:
        solve(client)
        mail = sink.wait_for(to, 2)[1]
        plain, rich = text_of(mail)
        assert "How did we do?" in plain and "How did we do?" in rich
        links = LINKS.findall(plain)
        assert [score for _, score in links] == ["1", "2", "3", "4", "5"]
        base = links[0][0]
        assert {link for link, _ in links} == {base}
        assert f'href="{base}?score=4"' in rich

        shown = httpx.get(f"{base}?score=4")  # a scanner's prefetch: nothing is recorded
        assert shown.status_code == 200
        assert 'value="4" required checked' in shown.text and "<textarea" in shown.text
        assert client.get("/api/v1/reports/csat").json()["count"] == 0

        bad = httpx.post(base, data={"score": "9"})
        assert bad.status_code == 422 and "from 1 to 5" in bad.text
        posted = httpx.post(base, data={"score": "4", "comment": "Fixed <i>fast</i>"})
        assert posted.status_code == 200 and "rating of 4 out of 5 is recorded" in posted.text
        report = client.get("/api/v1/reports/csat").json()
        assert [(r["ticket"], r["score"], r["comment"]) for r in report["ratings"]] == [
            (1, 4, "Fixed <i>fast</i>")]
        again = httpx.post(base, data={"score": "5"})  # changed; the comment stays
        assert again.status_code == 200
        report = client.get("/api/v1/reports/csat").json()
        assert [(r["score"], r["comment"]) for r in report["ratings"]] == [
            (5, "Fixed <i>fast</i>")]
        events = client.get("/api/v1/tickets/1").json()["events"]
        assert [e["data"] for e in events if e["type"] == "rating"] == [
            {"score": 4, "channel": "email"}, {"score": 5, "channel": "email", "from": 4}]

    forged = base[:-3] + ("aaa" if not base.endswith("aaa") else "bbb")
    for answer in (httpx.get(f"{forged}?score=1"), httpx.post(forged, data={"score": "1"})):
        assert answer.status_code == 400 and "does not work" in answer.text


def test_a_site_with_ratings_off_gets_a_solved_mail_without_links(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    run_cli("site", "set-ratings", "--db", str(mailer.db), "--site", site.key, "off")
    to = address("unrated")
    submit_form(mailer, site, to)
    sink.wait_for(to)
    with api(mailer, site) as client:
        solve(client)
    plain, rich = text_of(sink.wait_for(to, 2)[1])
    assert "solved" in plain and "How did we do?" not in plain + rich
    assert LINKS.search(plain) is None
    wait_until(lambda: [r["state"] for r in outbox(mailer.db, to)] == ["sent", "sent"],
               "the solved mail settled")
