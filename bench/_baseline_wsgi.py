"""The WSGI app as the compliance summary was before issue 13, for bench/reads.py's load-test baseline: servers per
verdict grouped from the per-server results on every request, nothing cached."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

from django.db.models import Count  # noqa: E402

from inventory import selectors  # noqa: E402
from inventory.models import ServerResult  # noqa: E402


class _NoCache:
    def get(self, key, default=None):
        return default

    def set(self, *args, **kwargs):
        pass


def servers_per_verdict(scan):
    rows = ServerResult.objects.filter(scan=scan).values_list("verdict_id", "state").annotate(n=Count("pk"))
    return list(rows.order_by())


selectors.cache = _NoCache()
selectors.servers_per_verdict = servers_per_verdict
