"""Test certificates made at test time with the `openssl` command.

Certs(dir) builds, in a directory of its own:
  - ca.crt / ca.key: a CA (EC P-256, so that handshakes stay fast under ASan);
  - server.crt / server.key: 127.0.0.1 and localhost, signed by the CA;
  - client(name, ...): client certificates signed by the CA with `openssl ca`, which can also
    back-date one (expired) or revoke one and write the CRL (crl.pem);
  - other_ca(): a second CA whose certificates the first does not trust.
Every file is a PEM path; nothing is shared between test classes.
"""

import os
import subprocess

OPENSSL = "/usr/bin/openssl"

CA_CONF = """
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/{name}.crt
private_key = $dir/{name}.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
unique_subject = no
preserve = yes
copy_extensions = copy
[ policy_any ]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = optional
emailAddress = optional
"""


def run(*args, cwd=None):
    r = subprocess.run([OPENSSL] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        raise AssertionError("openssl %s failed:\n%s" % (" ".join(args),
                                                         r.stdout.decode("utf-8", "replace")))
    return r.stdout.decode("utf-8", "replace")


def _key(path):
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)


class Certs:
    def __init__(self, directory, name="ca", cn="Starling Test CA"):
        self.dir = directory
        self.name = name
        os.makedirs(os.path.join(directory, "newcerts"), exist_ok=True)
        for fname, text in (("index.txt", ""), ("serial", "1000\n"), ("crlnumber", "1000\n")):
            with open(os.path.join(directory, fname), "w") as f:
                f.write(text)
        self.conf = self.path(name + ".cnf")
        with open(self.conf, "w") as f:
            f.write(CA_CONF.format(dir=directory, name=name))
        self.ca_key = self.path(name + ".key")
        self.ca = self.path(name + ".crt")
        _key(self.ca_key)
        run("req", "-x509", "-new", "-key", self.ca_key, "-out", self.ca, "-days", "30",
            "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.crl = None
        self.server, self.server_key = None, None

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_server(self, san="IP:127.0.0.1,DNS:localhost"):
        self.server, self.server_key = self.sign("server", "/CN=localhost", san=san,
                                                 usage="serverAuth")
        return self.server, self.server_key

    def sign(self, name, subject, san=None, usage="clientAuth", start=None, end=None):
        """A certificate for `subject` signed by this CA: (cert path, key path)."""
        key, csr, crt = self.path(name + ".key"), self.path(name + ".csr"), self.path(
            name + ".crt")
        _key(key)
        args = ["req", "-new", "-key", key, "-out", csr, "-subj", subject,
                "-addext", "extendedKeyUsage=" + usage]
        if san:
            args += ["-addext", "subjectAltName=" + san]
        run(*args)
        args = ["ca", "-batch", "-config", self.conf, "-in", csr, "-out", crt, "-notext"]
        if start:
            args += ["-startdate", start, "-enddate", end]
        run(*args)
        return crt, key

    def client(self, name, subject=None, expired=False):
        if expired:
            return self.sign(name, subject or "/CN=" + name, start="20200101000000Z",
                             end="20200201000000Z")
        return self.sign(name, subject or "/CN=" + name)

    def revoke(self, crt):
        """Revokes crt and (re)writes crl.pem."""
        run("ca", "-config", self.conf, "-revoke", crt)
        return self.gencrl()

    def gencrl(self):
        self.crl = self.path("crl.pem")
        run("ca", "-config", self.conf, "-gencrl", "-out", self.crl)
        return self.crl
