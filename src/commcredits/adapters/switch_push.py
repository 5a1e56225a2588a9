"""Cut-now webhook: POST ``{"call_id", "tenant_id", "reason"}`` as JSON to the switch.

Kamailio receives it with ``xhttp`` and ends the dialog (``integrations/kamailio``); a
FreeSWITCH or Asterisk bridge can do the same with ``uuid_kill`` / ``channel hangup``.
"""

from __future__ import annotations

import json
import urllib.request


class WebhookSwitchNotifier:
    def __init__(self, url: str, token: str | None = None, timeout_s: float = 2.0) -> None:
        self.url = url
        self.token = token
        self.timeout_s = timeout_s

    def cut(self, call_id: str, tenant_id: str, reason: str) -> None:
        body = json.dumps({"call_id": call_id, "tenant_id": tenant_id,
                           "reason": reason}).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"the switch answered {response.status}")
