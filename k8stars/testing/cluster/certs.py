"""Certificates and keys of the test control plane, and TLS for 127.0.0.1 webhook servers.

ECDSA P-256 everywhere: key generation takes microseconds instead of RSA's tens of
milliseconds, and every component (and the service-account token signer) accepts it.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ModuleNotFoundError as missing:  # a plain install: the test cluster's dependencies are an extra
    raise ModuleNotFoundError(
        f"the test cluster (k8stars.testing.cluster) needs {missing.name!r}, which a plain install lacks: "
        "pip install 'k8stars[cluster]' (or '.[cluster]' in a checkout)",
        name=missing.name,
    ) from None

# Long enough for any test session or a developer's `up` cluster; short enough to be obviously
# throwaway.
_VALIDITY = dt.timedelta(days=30)
# Backdated so that a clock a little behind on another process never sees "not yet valid".
_BACKDATE = dt.timedelta(hours=1)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        # Kubernetes maps O= of a client certificate to the user's groups.
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


@dataclass(frozen=True)
class CertAuthority:
    """A throwaway CA that signs serving and client certificates."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str = "k8stars-test-ca") -> CertAuthority:
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert=cert, key=key)

    @classmethod
    def load(cls, cert_file: Path, key_file: Path) -> CertAuthority:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{key_file}: expected an EC private key")
        return cls(cert=cert, key=key)

    @property
    def pem(self) -> bytes:
        return cert_pem(self.cert)

    def write(self, cert_file: Path, key_file: Path) -> None:
        cert_file.write_bytes(self.pem)
        _write_private(key_file, key_pem(self.key))

    def issue(
        self,
        common_name: str,
        *,
        organization: str | None = None,
        server: bool = False,
        client: bool = False,
        dns_names: Sequence[str] = (),
        ips: Sequence[str] = (),
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A leaf certificate for serving (SANs) and/or client authentication (CN/O)."""
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organization))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key


def write_leaf(
    directory: Path, stem: str, pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> tuple[Path, Path]:
    """Write `<stem>.crt` and `<stem>.key`; return their paths."""
    cert, key = pair
    cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_file.write_bytes(cert_pem(cert))
    _write_private(key_file, key_pem(key))
    return cert_file, key_file


def write_service_account_keys(directory: Path) -> tuple[Path, Path]:
    """The key pair KCM signs service-account tokens with and the apiserver verifies them with."""
    key = _new_key()
    private, public = directory / "sa.key", directory / "sa.pub"
    _write_private(private, key_pem(key))
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


@dataclass(frozen=True)
class WebhookTLS:
    """Serving certificate of a webhook on 127.0.0.1, and the caBundle the apiserver needs."""

    cert_file: Path
    key_file: Path
    ca_pem: bytes

    @property
    def ca_bundle(self) -> str:
        """Base64 of the CA PEM, as `clientConfig.caBundle` wants it."""
        return base64.b64encode(self.ca_pem).decode("ascii")

    def server_context(self) -> ssl.SSLContext:
        """An SSLContext for an HTTPS server (asyncio, aiohttp, http.server) to serve with."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def make_webhook_tls(
    directory: Path,
    *,
    ca: CertAuthority | None = None,
    name: str = "webhook",
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
) -> WebhookTLS:
    """Serving cert/key for a local webhook server plus the CA bundle to register it with.

    `hosts` become SANs (IP literals as IP SANs): the apiserver checks the URL's host against
    them. Without `ca` a fresh CA is made just for this webhook.
    """
    directory.mkdir(parents=True, exist_ok=True)
    authority = ca or CertAuthority.create(f"{name}-ca")
    ips = [h for h in hosts if _is_ip(h)]
    dns = [h for h in hosts if not _is_ip(h)]
    cert_file, key_file = write_leaf(directory, name, authority.issue(name, server=True, dns_names=dns, ips=ips))
    return WebhookTLS(cert_file=cert_file, key_file=key_file, ca_pem=authority.pem)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
