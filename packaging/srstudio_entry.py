"""PyInstaller's entry script: the same `srstudio` command as the console entry point (no
arguments: the app; a subcommand: the CLI)."""

from __future__ import annotations

import multiprocessing
import os
import ssl
import sys

from app.launcher import main

# Where Linux distributions and macOS keep the system's CA certificates (the list Go uses).
CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Arch, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7
    "/etc/ssl/cert.pem",  # Alpine, macOS
)


def use_system_certificates() -> None:
    """The bundled OpenSSL looks for CA certificates where the build machine kept them; on
    another distribution (or a Mac) that place may not exist, and every HTTPS download (the
    Models dialog) would fail. Then point SSL_CERT_FILE at the system's bundle, unless the user
    set it. Windows needs nothing: Python reads the Windows certificate store."""
    if sys.platform == "win32" or os.environ.get("SSL_CERT_FILE"):
        return
    found = ssl.get_default_verify_paths()  # cafile / capath are None where they do not exist
    if found.cafile or (found.capath and os.listdir(found.capath)):
        return
    for path in CA_FILES:
        if os.path.isfile(path):
            os.environ["SSL_CERT_FILE"] = path
            return


if __name__ == "__main__":
    # A frozen program must call this first for multiprocessing children (spawned on Windows
    # and macOS) to run their task instead of a second app.
    multiprocessing.freeze_support()
    use_system_certificates()
    sys.exit(main())
