#!/usr/bin/env python3
"""Test certificates for the TLS tests, made with Python's `cryptography`: a CA, a server
certificate it signs for `localhost` and 127.0.0.1, and the stores Flume users have.

    make_certs.py DIR

writes ca.pem, server-cert.pem, server-key.pem, server.pem (key, certificate, CA),
server.p12 (PKCS#12, password `changeit`), and with Java's `keytool` the stores a Java user
makes: truststore.p12 (PKCS#12 of the trusted CA) and truststore.jks (JKS).
"""
import datetime
import ipaddress
import os
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PASSWORD = b"changeit"


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("flumen test CA")).issuer_name(name("flumen test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())

    def write(file, data):
        with open(os.path.join(out, file), "wb") as f:
            f.write(data)

    write("ca.pem", ca.public_bytes(pem))
    write("server-cert.pem", cert.public_bytes(pem))
    write("server-key.pem", key_pem)
    write("server.pem", key_pem + cert.public_bytes(pem) + ca.public_bytes(pem))
    enc = serialization.BestAvailableEncryption(PASSWORD)
    write("server.p12", pkcs12.serialize_key_and_certificates(b"server", key, cert, [ca], enc))
    for kind, file in (("PKCS12", "truststore.p12"), ("JKS", "truststore.jks")):
        subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file",
                        os.path.join(out, "ca.pem"), "-keystore", os.path.join(out, file),
                        "-storetype", kind, "-storepass", PASSWORD.decode()],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
