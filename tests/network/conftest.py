"""Company networks on loopback: an emulator behind TLS from a private CA, a forward proxy."""

from __future__ import annotations

import pytest
import trustme

from tests.network.support import OTHER_CA, Tls


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA(organization_name="Example Corp internal CA")
    issued = authority.issue_cert("127.0.0.1", "localhost")
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    trustme.CA(organization_name="Some other CA").cert_pem.write_to_path(str(OTHER_CA))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    with (folder / "chain.pem").open("wb") as handle:
        for blob in issued.cert_chain_pems:
            handle.write(blob.bytes())
    return Tls(folder / "ca.pem", folder / "chain.pem", folder / "key.pem")
