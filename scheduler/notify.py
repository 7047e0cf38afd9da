"""Notifications of a schedule's events: a run succeeded, failed (or timed
out), or alerts matched and a run was queued.

A schedule chooses the events (``notify_on``: success, failure, match) and
where they go besides the in-app list, which always gets them (the
`notifications` table, read through the API): e-mail to its addresses over
SMTP (ALERTLAB_SMTP_HOST), and a webhook with Slack-compatible JSON
``{"text": ...}``. Each notification row records how each delivery went.
Webhooks to private, loopback or link-local addresses are refused unless
ALERTLAB_WEBHOOK_PRIVATE is set (the scheduler must not become a way into the
internal network)."""

from __future__ import annotations

import ipaddress
import logging
import smtplib
import socket
from email.message import EmailMessage
from urllib.parse import urlparse

import httpx

from alertlab.core import settings
from alertlab.scheduler.errors import ScheduleError
from alertlab.scheduler.store import dumps, engine, execute, utcnow

log = logging.getLogger(__name__)
EVENTS = ("success", "failure", "match")


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast \
        or ip.is_unspecified


def check_webhook(url: str, resolve: bool = True) -> str:
    """``url`` if the scheduler may post to it; ScheduleError saying why not."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ScheduleError(f"bad webhook URL {url!r}: an http:// or https:// URL")
    if settings.get("ALERTLAB_WEBHOOK_PRIVATE"):
        return url
    host = parsed.hostname
    try:
        addresses = [host] if _is_ip(host) else (
            [ai[4][0] for ai in socket.getaddrinfo(host, None)] if resolve else [])
    except socket.gaierror:
        raise ScheduleError(f"bad webhook URL {url!r}: the host {host!r} does not resolve") from None
    if any(_private(a) for a in addresses):
        raise ScheduleError(f"webhook {url!r} points to a private address; ask an administrator "
                            "(ALERTLAB_WEBHOOK_PRIVATE) if this is intended")
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def send_email(to: list[str], subject: str, body: str) -> str:
    host = settings.get("ALERTLAB_SMTP_HOST")
    if not host:
        return "not sent: no SMTP server configured (ALERTLAB_SMTP_HOST)"
    msg = EmailMessage()
    msg["From"] = settings.get("ALERTLAB_SMTP_FROM")
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content(body)
    try:
        with smtplib.SMTP(host, settings.get("ALERTLAB_SMTP_PORT"), timeout=15) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("e-mail to %s failed: %s", to, exc)
        return f"error: {exc}"
    return "sent"


def post_webhook(url: str, title: str, body: str) -> str:
    try:
        check_webhook(url)
        r = httpx.post(url, json={"text": f"*{title}*\n{body}"}, timeout=10, follow_redirects=False)
    except ScheduleError as exc:
        return f"refused: {exc}"
    except httpx.HTTPError as exc:
        log.warning("webhook %s failed: %s", url, exc)
        return f"error: {exc}"
    return "sent" if r.status_code < 400 else f"error: HTTP {r.status_code}"


def deliver(schedule: dict, kind: str, title: str, body: str, run_id: int | None = None) -> dict:
    """Send ``kind`` (success, failure, match, or a notice such as rate-limited) to the schedule's
    targets when it asked for that kind; notices always go to the in-app list."""
    wanted = set(filter(None, (schedule.get("notify_on") or "").split(",")))
    if kind in EVENTS and kind not in wanted:
        return {}
    delivery = {}
    if kind in EVENTS:
        emails = [e for e in (schedule.get("notify_email") or "").split(",") if e]
        if emails:
            delivery["email"] = send_email(emails, title, body)
        if schedule.get("notify_webhook"):
            delivery["webhook"] = post_webhook(schedule["notify_webhook"], title, body)
    with engine().begin() as conn:
        execute(conn, """
            INSERT INTO notifications (owner, schedule_id, run_id, kind, title, body, delivery, created)
            VALUES (:owner, :sid, :rid, :kind, :title, :body, :delivery, :now)""",
            owner=schedule["owner"], sid=schedule.get("schedule_id", schedule.get("id")), rid=run_id, kind=kind,
            title=title[:512], body=body, delivery=dumps(delivery), now=utcnow())
    return delivery


def run_finished(run: dict, status: str, error: str | None) -> dict:
    """After a run's final status (``run`` is a claimed run: it carries the schedule's targets)."""
    kind = {"succeeded": "success", "failed": "failure", "timed-out": "failure"}.get(status)
    if kind is None:
        return {}
    name = run.get("schedule_name") or run["notebook"]
    title = f"AlertLab: {name} {status} (run {run['id']})"
    lines = [f"Schedule {run['schedule_id']} ({name}), notebook {run['notebook']}",
             f"Run {run['id']}, {run['reason']} at {run['fire_time']:%Y-%m-%d %H:%M:%S} UTC: {status}"]
    if error:
        lines.append(f"Error: {error}")
    schedule = {"owner": run["owner"], "schedule_id": run["schedule_id"], "notify_on": run.get("notify_on"),
                "notify_email": run.get("notify_email"), "notify_webhook": run.get("notify_webhook")}
    return deliver(schedule, kind, title, "\n".join(lines), run["id"])


def matched(schedule: dict, run_id: int, objects: list[str]) -> dict:
    """Alerts matched and a run was queued."""
    shown = ", ".join(objects[:20]) + (f" and {len(objects) - 20} more" if len(objects) > 20 else "")
    title = f"AlertLab: {schedule['name']} matched {len(objects)} object(s)"
    body = (f"Schedule {schedule['id']} ({schedule['name']}) on {schedule['alert_kind']} {schedule['alert_id']}: "
            f"{shown}. Run {run_id} is queued.")
    return deliver(schedule, "match", title, body, run_id)
