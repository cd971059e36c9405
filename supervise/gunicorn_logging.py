"""gunicorn's own lines in the app's text shape, for `supervise serve` in development.

gunicorn writes its server lines as `[2026-12-01 13:00:07 +0000] [pid] [INFO] …` and its access
lines with `[01/Dec/2026:13:00:10 +0000]`; the app, the worker and the cron write
`2026-12-01T13:00:10.157+00:00 INFO logger [request-id]: …` (supervise/logs.py). With this logger
class every line of a `serve` terminal starts with the same ISO 8601 UTC time, so they sort and
compare. (LOG_FORMAT=json has one shape already: supervise/gunicorn_conf.py's JsonLogger.)
"""

from __future__ import annotations

from gunicorn import glogging

from supervise.logs import TextFormatter

# The combined format without its own time (the line starts with it) and with the request id
# (the response's X-Request-ID) where the app's lines carry theirs.
ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'


class TextLogger(glogging.Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(TextFormatter())

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        try:
            atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
            self.access_log.info(ACCESS_FORMAT, atoms, extra={"request_id": atoms["{x-request-id}o"]})
        except Exception:
            self.exception("access log line failed")
