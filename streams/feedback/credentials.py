"""The Kafka connection's security properties, as faust (aiokafka) takes them.

confluent-kafka clients take librdkafka properties as they are (:class:`KafkaConnection`);
faust speaks to the brokers through aiokafka, which wants an ``ssl.SSLContext`` and a
credentials object instead. Only the security properties carry over: other librdkafka
properties (``FRAUD_KAFKA_CONFIG``) have no aiokafka equivalent and do not apply here.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from streams.errors import ConfigError
from streams.kafka import Endpoint, connection


def broker_urls(endpoint: Endpoint) -> list[str]:
    """faust broker URLs, one per bootstrap server."""
    servers = [s.strip() for s in connection(endpoint).bootstrap.split(",") if s.strip()]
    return [f"kafka://{server}" for server in servers]


def faust_credentials(endpoint: Endpoint) -> Any:
    """``broker_credentials`` for :class:`faust.App`; None for a plaintext connection."""
    props = connection(endpoint).properties
    protocol = str(props.get("security.protocol", "plaintext")).upper()
    if protocol == "PLAINTEXT":
        return None
    context: ssl.SSLContext | None = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=props.get("ssl.ca.location"))
        if "ssl.certificate.location" in props:
            context.load_cert_chain(
                props["ssl.certificate.location"],
                props.get("ssl.key.location"),
                password=props.get("ssl.key.password"),
            )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        return faust.SASLCredentials(
            username=props["sasl.username"],
            password=props["sasl.password"],
            mechanism=props["sasl.mechanism"],
            ssl_context=context,
        )
    raise ConfigError(f"security.protocol {protocol!r} is not supported by the faust worker")
