"""An EHR's login written with Authlib alone, as an integrator would write it.

RFC 8414 discovery from the issuer, the RFC 8628 device authorization request,
then Authlib's own token request polled as RFC 8628 §3.5 says. Nothing here
knows Shomei beyond the issuer URL and the terminal's client credentials;
tests/tests/e2e/oauth_clients.rs runs it against `shomei serve` with the
desktop phone approving.

    python3 authlib_ehr.py ISSUER CLIENT_ID CLIENT_SECRET

stdout: one JSON line with the device authorization response (for the phone
to scan), then one JSON line with the token response (or {"error": ...}).
"""

import json
import sys
import time

from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"


def main() -> int:
    issuer, client_id, client_secret = sys.argv[1:4]
    session = OAuth2Session(client_id, client_secret, scope="sign", token_endpoint_auth_method="client_secret_basic")
    meta = session.get(f"{issuer}/.well-known/oauth-authorization-server", withhold_token=True, timeout=10).json()
    assert meta["issuer"] == issuer, meta

    # Authlib has no device-authorization client call: RFC 8628 §3.1 is a
    # client-authenticated form POST, done with the same session.
    resp = session.post(
        meta["device_authorization_endpoint"],
        data={"scope": "sign"},
        auth=(client_id, client_secret),
        withhold_token=True,
        timeout=10,
    )
    resp.raise_for_status()
    device = resp.json()
    print(json.dumps(device), flush=True)

    interval = device.get("interval", 5)
    deadline = time.monotonic() + device["expires_in"]
    while time.monotonic() < deadline:
        try:
            token = session.fetch_token(
                meta["token_endpoint"], grant_type=DEVICE_CODE, device_code=device["device_code"], timeout=10
            )
        except OAuthError as e:
            if e.error == "authorization_pending":
                time.sleep(interval)
                continue
            if e.error == "slow_down":
                interval += 5
                time.sleep(interval)
                continue
            print(json.dumps({"error": e.error}), flush=True)
            return 2
        print(json.dumps(dict(token)), flush=True)
        return 0
    print(json.dumps({"error": "expired_token"}), flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
