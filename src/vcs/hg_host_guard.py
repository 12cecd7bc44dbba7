"""Mercurial extension of pulse-bridge: no HTTP request leaves for a host
that is not allowed.

Mercurial follows HTTP redirects to any host and has no setting to refuse
them; servers can also name other hosts outright (clone bundle manifests,
bundle2 `remote-changegroup` parts). Every HTTP(S) request hg makes goes
through an opener built by `mercurial.url.opener()`, which adds the handlers
listed in `url.handlerfuncs`; this extension adds one whose request
pre-processor refuses any request (the first one, or one made by urllib's
redirect handler, or one to a server-named URL) whose host is not on
`pulsebridge.allowed-hosts`. The refusal happens before a connection is
opened, so not one byte is exchanged with such a host.

Loaded by src/vcs/hg.ts on every hg command that talks to a server:
  hg --config extensions.pulsebridge_hostguard=<this file>
     --config pulsebridge.allowed-hosts=<host>[,<host>...] ...
An entry with a port allows exactly that host:port; one without a port
allows the host on any port (the rule of ALLOWED_HOSTS in src/core/config.ts).
Without the setting every request is refused.

The abort message names no URL and no host taken from the server's answer:
tool errors end up in job errors, shown by the dashboard.
"""

import re
import urllib.request

from mercurial import error, registrar, url as urlmod

testedwith = b"6.3"

configtable = {}
configitem = registrar.configitem(configtable)
configitem(b"pulsebridge", b"allowed-hosts", default=list)


# A host as urllib's Request.host holds it: "name" or "name:port" (IPv6 in
# brackets). Anything else (userinfo "a@b", a non-numeric port) is refused.
_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]+))?$")


def _allowed(entries, host):
    match = _HOST.match(host.lower())
    if not match:
        return False
    name = match.group(1)
    for entry in entries:
        # An entry with a port allows exactly that host:port, one without
        # allows the host on any port (as url-policy.ts reads ALLOWED_HOSTS).
        if _HOST.match(entry) and _HOST.match(entry).group(2) is not None:
            if entry == host.lower():
                return True
        elif entry == name:
            return True
    return False


class hostguard(urllib.request.BaseHandler):
    # Request pre-processors run in handler_order; run before every other one.
    handler_order = 0

    def __init__(self, ui):
        self._entries = [
            e.strip().lower().decode("ascii", "replace")
            for e in ui.configlist(b"pulsebridge", b"allowed-hosts")
            if e.strip()
        ]

    def _check(self, req):
        if not _allowed(self._entries, req.host):
            what = b"a redirect" if req.unverifiable else b"a request"
            raise error.Abort(
                b"refused %s to a host that is not in ALLOWED_HOSTS" % what,
                hint=b"allowed: %s" % b", ".join(e.encode("ascii") for e in self._entries),
            )
        return req

    http_request = _check
    https_request = _check


def uisetup(ui):
    urlmod.handlerfuncs.append(lambda ui, passmgr: hostguard(ui))
