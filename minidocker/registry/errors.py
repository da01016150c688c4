"""The registry's errors, as the distribution spec names them.

Every refusal a client can cause is a ``RegistryError`` that carries one of the spec's error
codes and the HTTP status that goes with it; the app turns it into the spec's JSON body
``{"errors": [{"code", "message", "detail"}]}``. Nothing a client sends should end as a 500.

Spec: opencontainers/distribution-spec spec.md, "Error Codes" (code-1 ... code-14).
Used by: notebook 11-registries (the error table), every module of this package.
"""

from minidocker.errors import MinidockerError

# code -> (HTTP status, the spec's description)
CODES = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
}


class RegistryError(MinidockerError):
    """A request the registry refuses: ``code`` is the spec's, ``status`` the HTTP status
    (the code's usual one unless the spec asks for another, e.g. 416 or 413); ``headers`` go
    on the response (a 416 says where the upload stands)."""

    def __init__(self, code: str, message: str, detail=None, status: int | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.code, self.detail = code, detail
        self.status = status or CODES[code][0]
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": str(self)}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}
