"""The headers the `alertlab` service's proxy sends the Voila server with each
request (Voila trusts them because the request also carries its secret)."""

VIEWER = "X-AlertLab-Viewer"          # the hub user the request is for
DASHBOARD = "X-AlertLab-Dashboard"    # the gallery entry's slug
LIMIT = "X-AlertLab-Limit"            # kernels the dashboard may have at once
TOKEN = "X-AlertLab-Token"            # the viewer's short-lived hub token, for the kernel
LINK = "X-AlertLab-Link"              # the link share the viewer came with, if any
URL = "X-AlertLab-Url"                # where kernels reach the API
RESERVATION = "X-AlertLab-Reservation"  # set inside Voila: the viewer's place under the limit
