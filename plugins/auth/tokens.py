"""Signed tokens (JWT): issue and verify, one algorithm per deployment.

HS256 with a secret of at least 32 bytes by default; RS256 or ES256 with a
private key file (and optionally the public key file) when configured, whose
public key is then published at ``/.well-known/jwks.json``.

Every token carries ``exp``, ``iat``, ``sub``, ``jti`` and ``typ`` and every
one of them is required on the way in.  Only the configured algorithm is
accepted, so ``alg: none`` and algorithm switching (an HS256 token signed
with the RSA public key) are refused; ``typ`` must be the expected one, so a
refresh or reset token is never an access token.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from swain.core import Config, ConfigError, Unauthorized

REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "typ")
ALGORITHMS = ("HS256", "RS256", "ES256")
CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class TokenSigner:
    def __init__(self, config: Config) -> None:
        auth = config.auth
        self.algorithm: str = auth.jwt_algorithm
        self.issuer: str = auth.jwt_issuer or config.project.name
        self.leeway = 5
        if self.algorithm == "HS256":
            secret = auth.jwt_secret
            if not secret or len(secret.encode()) < 32:
                raise ConfigError("auth.jwt_secret: must be at least 32 bytes for HS256 (generate "
                                  "one with `python -c \"import secrets; print(secrets."
                                  "token_urlsafe(48))\"` and set it through ${SWAIN_JWT_SECRET})")
            self._secret: bytes = secret.encode()
            self._signing_key: Any = secret.encode()
            self._verify_key: Any = secret.encode()
            self.public_jwk: dict[str, Any] | None = None
        else:
            private_path = auth.jwt_private_key_file
            if not private_path:
                raise ConfigError(f"auth.jwt_private_key_file: required for {self.algorithm}")
            base = config.base_dir
            try:
                private_pem = (base / Path(private_path)).read_bytes()
                self._secret = private_pem
            except OSError as exc:
                raise ConfigError(f"auth.jwt_private_key_file: cannot read {private_path}: "
                                  f"{exc.strerror}") from None
            algorithm = RSAAlgorithm(RSAAlgorithm.SHA256) if self.algorithm == "RS256" \
                else ECAlgorithm(ECAlgorithm.SHA256)
            try:
                self._signing_key = algorithm.prepare_key(private_pem)
                if auth.jwt_public_key_file:
                    public_pem = (base / Path(auth.jwt_public_key_file)).read_bytes()
                    self._verify_key = algorithm.prepare_key(public_pem)
                else:
                    self._verify_key = self._signing_key.public_key()
            except (ValueError, TypeError, jwt.InvalidKeyError, OSError) as exc:
                raise ConfigError(f"auth.jwt_private_key_file: not a usable {self.algorithm} "
                                  f"key: {exc}") from None
            jwk = json.loads(algorithm.to_jwk(self._verify_key))
            jwk.update({"use": "sig", "alg": self.algorithm, "kid": self.key_id(jwk)})
            self.public_jwk = jwk

    def derive_key(self, purpose: str) -> bytes:
        """32 bytes for ``purpose``, derived (HKDF-SHA256) from the signing secret:
        the API's other secrets need no setting of their own, and one purpose's
        key tells nothing of another's or of the signing secret."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"swain:" + purpose.encode()).derive(self._secret)

    @staticmethod
    def key_id(jwk: dict[str, Any]) -> str:
        import hashlib

        material = json.dumps({k: jwk[k] for k in sorted(jwk) if k in ("crv", "e", "kty", "n",
                                                                          "x", "y")},
                              separators=(",", ":"))
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    def issue(self, subject: Any, typ: str, lifetime: float, **claims: Any) -> str:
        now = int(time.time())
        payload = {"sub": str(subject), "typ": typ, "iat": now, "exp": now + int(lifetime),
                   "jti": secrets.token_hex(16), "iss": self.issuer, **claims}
        headers = {"kid": self.public_jwk["kid"]} if self.public_jwk else None
        return jwt.encode(payload, self._signing_key, algorithm=self.algorithm, headers=headers)

    def verify(self, token: str, typ: str) -> dict[str, Any]:
        """The claims of a valid token of type ``typ``; otherwise 401 (never 500)."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != self.algorithm:
                raise Unauthorized("invalid token: algorithm not accepted",
                                   headers=CHALLENGE)
            claims: dict[str, Any] = jwt.decode(
                token, self._verify_key, algorithms=[self.algorithm], issuer=self.issuer,
                leeway=self.leeway, options={"require": [*REQUIRED_CLAIMS, "iss"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired", headers=CHALLENGE) from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token", headers=CHALLENGE) from None
        if claims.get("typ") != typ or not isinstance(claims.get("sub"), str) \
                or not isinstance(claims.get("jti"), str):
            raise Unauthorized("invalid token: wrong token type",
                               headers=CHALLENGE)
        return claims
