"""create_app(settings) -> Starlette: the routes, the middleware and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware

from widget_server.abuse import Limits
from widget_server.attachments import AttachmentSweep, open_attachments
from widget_server.clock import Clock, SystemClock
from widget_server.config import Settings
from widget_server.help_tokens import HelpTokens
from widget_server.mail_receiver import start_receiver
from widget_server.mail_route import MailRouter
from widget_server.mail_sender import MailSender
from widget_server.messaging import Messaging
from widget_server.realtime.hub import Hub, open_broker
from widget_server.retention import RetentionJob, credential_lifetime
from widget_server.runtime import Runtime
from widget_server.scheduler import SlaScheduler
from widget_server.store import open_store
from widget_server.visitor_tokens import VisitorTokens
from widget_server.web import (
    access_grants,
    api,
    demo_page,
    health,
    help_api,
    help_centre,
    help_form,
    help_metrics,
    inbound_email,
    mail_confirm,
    metrics_route,
    ratings,
    session,
    static,
    webhooks_api,
    widget_availability,
    widget_ws,
)
from widget_server.web import attachments as attachment_routes
from widget_server.web.bodies import BodyLimit
from widget_server.web.console import access as console_access
from widget_server.web.console import admin as console_admin
from widget_server.web.console import articles as console_articles
from widget_server.web.console import auth as console_auth
from widget_server.web.console import csat_pages as console_csat
from widget_server.web.console import live as console_live
from widget_server.web.console import mail_pages as console_mail
from widget_server.web.console import mail_prefs as console_mail_prefs
from widget_server.web.console import pages as console_pages
from widget_server.web.console import privacy as console_privacy
from widget_server.web.console import sla_pages as console_sla
from widget_server.web.console import webhook_pages as console_webhooks
from widget_server.web.console import workspace as console_workspace
from widget_server.web.errors import EXCEPTION_HANDLERS
from widget_server.web.headers import SecurityHeaders
from widget_server.web.request_log import RequestLog
from widget_server.web.url_check import UrlCheck
from widget_server.webhook_sender import WebhookSender

log = logging.getLogger(__name__)
BROKER_START_SECONDS = 30.0


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    clock = clock or SystemClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = open_store(settings, clock)
        await store.open()
        try:
            secret = settings.secret_key or await store.secret_key()
            attachments = open_attachments(settings, store, clock,
                                           [*settings.secret_key_fallbacks, secret])
            hub = Hub(open_broker(settings, store))
            async with asyncio.timeout(BROKER_START_SECONDS):
                await hub.broker.start()
            scheduler = SlaScheduler(store, hub, clock,
                                     lease=timedelta(seconds=settings.scheduler_lease))
            app.state.runtime = Runtime(
                settings=settings,
                store=store,
                hub=hub,
                clock=clock,
                messaging=Messaging(store, hub, clock, settings.max_body_chars),
                tokens=VisitorTokens(secret, settings.secret_key_fallbacks,
                                     settings.token_max_age, clock),
                help_tokens=HelpTokens(secret, settings.secret_key_fallbacks, clock),
                secret_keys=[*settings.secret_key_fallbacks, secret],
                limits=Limits(settings),
                attachments=attachments,
            )
            app.state.runtime.messaging.changed = scheduler.changed
            app.state.scheduler = scheduler
            retention = RetentionJob(store, clock, settings.retention_interval,
                                     credential_lifetime(settings.token_max_age))
            retention.after_run = attachments.sweep  # the files of purged messages go too
            sweep = AttachmentSweep(attachments)
            if settings.scheduler:
                scheduler.start()
                retention.start()
                sweep.start()
            mail = None
            if settings.smtp_url is None:
                log.info("mail is off (WIDGET_SMTP_URL is not set): nothing is mailed")
            else:
                mail = MailSender(store, clock, settings, secret, app.state.runtime.help_tokens,
                                  lambda found: attachments.link_url(settings.base_url, found))
                mail.start()
                log.info("mail goes out through %s", settings.smtp_url)
                if not settings.public_url:
                    log.warning("mail is on but WIDGET_PUBLIC_URL is not set: the links in "
                                "the mails point at %s", settings.base_url)
            webhooks = WebhookSender(store, clock, settings.webhook_allow_private,
                                     settings.base_url)
            webhooks.start()
            receiver = None
            if settings.smtp_listen is not None:
                receiver = await start_receiver(MailRouter(app.state.runtime),
                                                *settings.smtp_listen, settings.mail_max_bytes)
            try:
                yield
            finally:
                if receiver is not None:
                    receiver.close()
                await webhooks.stop()
                if mail is not None:
                    await mail.stop()
                await sweep.stop()
                await retention.stop()
                await scheduler.stop()
                await hub.broker.stop()
                await app.state.runtime.limits.close()
        finally:
            await store.close()

    routes = [
        *health.routes,
        *metrics_route.routes,
        *static.routes,
        *demo_page.routes,
        *widget_availability.routes,
        *session.routes,
        *widget_ws.routes,
        *api.routes,
        *webhooks_api.routes,
        *attachment_routes.routes,
        *inbound_email.routes,
        *access_grants.routes,
        *mail_confirm.routes,
        *ratings.routes,
        *help_form.routes,
        *help_centre.routes,
        *help_api.routes,
        *help_metrics.routes,
        *console_auth.routes,
        *console_pages.routes,
        *console_mail_prefs.routes,
        *console_admin.routes,
        *console_privacy.routes,
        *console_mail.routes,
        *console_webhooks.routes,
        *console_access.routes,
        *console_sla.routes,
        *console_csat.routes,
        *console_articles.routes,
        *console_live.routes,
        *console_workspace.routes,
    ]
    return Starlette(
        routes=routes,
        # Outermost first: the request id, the security headers reach every answer, a 413
        # of BodyLimit too.
        middleware=[Middleware(RequestLog, log_lines=settings.log_format == "json"),
                    Middleware(SecurityHeaders, hsts_seconds=settings.hsts_seconds),
                    Middleware(UrlCheck),
                    Middleware(BodyLimit, limit=settings.max_request_bytes,
                               timeout=settings.http_timeout,
                               own_limits=dict.fromkeys(attachment_routes.UPLOAD_PATHS,
                                                        settings.max_upload_bytes
                                                        + attachment_routes.MULTIPART_SLACK))],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
