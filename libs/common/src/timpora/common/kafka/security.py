"""Kafka's ACLs and SCRAM credentials, managed from Python with aiokafka's wire protocol.

aiokafka's admin client creates one ACL per request and cannot manage SCRAM users at all, and the
platform must not need Java where it runs (the agencies tool runs in the services' image). So the few
requests needed are declared here, as aiokafka declares its own: CreateAcls, DescribeAcls and
DeleteAcls at version 1 (the first with prefixed patterns, the oldest Kafka 4 still serves) and
AlterUserScramCredentials at version 0.

A SCRAM credential is sent salted and hashed, never as the password (RFC 5802's SaltedPassword), so the
password does not travel even to the broker.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Array,
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    String,
    TaggedFields,
)

#: Iterations of the SCRAM hash: Kafka's minimum is 4096; more makes a stolen credential costlier to crack.
SCRAM_ITERATIONS = 8192


class ResourceType(enum.IntEnum):
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class PatternType(enum.IntEnum):
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(enum.IntEnum):
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class Permission(enum.IntEnum):
    ANY = 1
    DENY = 2
    ALLOW = 3


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    """One ALLOW rule: ``principal`` may do ``operation`` on the resource(s) named (literally or by prefix)."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern: PatternType
    operation: Operation

    def describe(self) -> str:
        kind = "prefix" if self.pattern is PatternType.PREFIXED else "name"
        return (
            f"{self.principal} may {self.operation.name} {self.resource_type.name.lower()} {kind} {self.resource_name}"
        )


def user(name: str) -> str:
    """The principal Kafka gives a SCRAM user."""
    return f"User:{name}"


class KafkaSecurityError(RuntimeError):
    """The broker refused an ACL or credential change; says which and why (never a password)."""


# --- the requests ---------------------------------------------------------------------------------------


_FILTER = (
    ("resource_type", Int8),
    ("resource_name", String("utf-8")),
    ("resource_pattern_type_filter", Int8),
    ("principal", String("utf-8")),
    ("host", String("utf-8")),
    ("operation", Int8),
    ("permission_type", Int8),
)
_ACL = (
    ("resource_type", Int8),
    ("resource_name", String("utf-8")),
    ("resource_pattern_type", Int8),
    ("principal", String("utf-8")),
    ("host", String("utf-8")),
    ("operation", Int8),
    ("permission_type", Int8),
)


class _CreateAclsResponseV1(Response):
    API_KEY = 30
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", Array(("error_code", Int16), ("error_message", String("utf-8")))),
    )


class _CreateAclsRequestV1(RequestStruct):
    API_KEY = 30
    API_VERSION = 1
    RESPONSE_TYPE = _CreateAclsResponseV1
    SCHEMA = Schema(("creations", Array(*_ACL)))


class _CreateAcls(Request[_CreateAclsRequestV1]):
    API_KEY = 30

    def __init__(self, bindings: Sequence[AclBinding]) -> None:
        self._bindings = bindings

    def build(self, request_struct_class: type[_CreateAclsRequestV1]) -> _CreateAclsRequestV1:
        return request_struct_class(
            [
                (b.resource_type, b.resource_name, b.pattern, b.principal, "*", b.operation, Permission.ALLOW)
                for b in self._bindings
            ]
        )


class _DescribeAclsResponseV1(Response):
    API_KEY = 29
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", String("utf-8")),
        (
            "resources",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                ("resource_pattern_type", Int8),
                (
                    "acls",
                    Array(
                        ("principal", String("utf-8")),
                        ("host", String("utf-8")),
                        ("operation", Int8),
                        ("permission_type", Int8),
                    ),
                ),
            ),
        ),
    )


class _DescribeAclsRequestV1(RequestStruct):
    API_KEY = 29
    API_VERSION = 1
    RESPONSE_TYPE = _DescribeAclsResponseV1
    SCHEMA = Schema(*_FILTER)


@dataclass(frozen=True, slots=True)
class AclFilter:
    """Which ACLs to list or delete; ``None`` matches anything."""

    principal: str | None = None
    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern: PatternType = PatternType.ANY
    operation: Operation = Operation.ANY

    @classmethod
    def exactly(cls, binding: AclBinding) -> AclFilter:
        """The filter matching ``binding`` and nothing else."""
        return cls(binding.principal, binding.resource_type, binding.resource_name, binding.pattern, binding.operation)

    def fields(self) -> tuple[Any, ...]:
        return (
            self.resource_type,
            self.resource_name,
            self.pattern,
            self.principal,
            None,
            self.operation,
            Permission.ANY,
        )


class _DescribeAcls(Request[_DescribeAclsRequestV1]):
    API_KEY = 29

    def __init__(self, acl_filter: AclFilter) -> None:
        self._filter = acl_filter

    def build(self, request_struct_class: type[_DescribeAclsRequestV1]) -> _DescribeAclsRequestV1:
        return request_struct_class(*self._filter.fields())


class _DeleteAclsResponseV1(Response):
    API_KEY = 31
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "filter_responses",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                ("matching_acls", Array(("error_code", Int16), ("error_message", String("utf-8")), *_ACL)),
            ),
        ),
    )


class _DeleteAclsRequestV1(RequestStruct):
    API_KEY = 31
    API_VERSION = 1
    RESPONSE_TYPE = _DeleteAclsResponseV1
    SCHEMA = Schema(("filters", Array(*_FILTER)))


class _DeleteAcls(Request[_DeleteAclsRequestV1]):
    API_KEY = 31

    def __init__(self, filters: Sequence[AclFilter]) -> None:
        self._filters = filters

    def build(self, request_struct_class: type[_DeleteAclsRequestV1]) -> _DeleteAclsRequestV1:
        return request_struct_class([f.fields() for f in self._filters])


class _AlterScramResponseV0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScramRequestV0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterScramResponseV0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


#: Kafka's code for SCRAM-SHA-512 in AlterUserScramCredentials.
_SCRAM_SHA_512 = 2
_ScramChange: TypeAlias = tuple[Any, ...]


class _AlterScram(Request[_AlterScramRequestV0]):
    API_KEY = 51

    def __init__(self, deletions: Sequence[_ScramChange], upsertions: Sequence[_ScramChange]) -> None:
        self._deletions = deletions
        self._upsertions = upsertions

    def build(self, request_struct_class: type[_AlterScramRequestV0]) -> _AlterScramRequestV0:
        return request_struct_class(list(self._deletions), list(self._upsertions), {})


class _DescribeScramResponseV0(Response):
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("credential_infos", CompactArray(("mechanism", Int8), ("iterations", Int32), ("tags", TaggedFields))),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _DescribeScramRequestV0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = _DescribeScramResponseV0
    SCHEMA = Schema(
        ("users", CompactArray(("name", CompactString("utf-8")), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class _DescribeScram(Request[_DescribeScramRequestV0]):
    API_KEY = 50

    def build(self, request_struct_class: type[_DescribeScramRequestV0]) -> _DescribeScramRequestV0:
        # A null list asks for every user that has a credential.
        return request_struct_class(None, {})


# --- what the platform calls ------------------------------------------------------------------------------


def _raise_for(code: int, message: str | None, what: str) -> None:
    if code:
        error = for_code(code)
        raise KafkaSecurityError(f"{what}: {error.__name__}{f' ({message})' if message else ''}")


async def _send(admin: AIOKafkaAdminClient, request: Request[Any]) -> Any:  # noqa: ANN401 - a response of the request's kind
    # The controller applies ACL and credential changes; any broker forwards them to it.
    return await admin._send_request(request)  # noqa: SLF001 - the admin client's one way to send a request


async def create_acls(admin: AIOKafkaAdminClient, bindings: Iterable[AclBinding]) -> None:
    """Adds the bindings (an existing one is left as it is: Kafka stores each rule once)."""
    wanted = sorted(set(bindings))
    if not wanted:
        return
    response = await _send(admin, _CreateAcls(wanted))
    for binding, (code, message) in zip(wanted, response.results, strict=True):
        _raise_for(code, message, f"could not add the rule '{binding.describe()}'")


async def describe_acls(admin: AIOKafkaAdminClient, acl_filter: AclFilter) -> list[AclBinding]:
    response = await _send(admin, _DescribeAcls(acl_filter))
    _raise_for(response.error_code, response.error_message, "could not list ACLs")
    found: list[AclBinding] = []
    for resource_type, resource_name, pattern, acls in response.resources:
        for principal, _host, operation, permission in acls:
            if permission == Permission.ALLOW:
                found.append(
                    AclBinding(
                        principal,
                        ResourceType(resource_type),
                        resource_name,
                        PatternType(pattern),
                        Operation(operation),
                    )
                )
    return sorted(found)


async def delete_acls(admin: AIOKafkaAdminClient, filters: Sequence[AclFilter]) -> int:
    """Removes every ACL matching any filter; returns how many went."""
    if not filters:
        return 0
    response = await _send(admin, _DeleteAcls(filters))
    removed = 0
    for code, message, matching in response.filter_responses:
        _raise_for(code, message, "could not remove ACLs")
        removed += len(matching)
    return removed


def salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """RFC 5802's SaltedPassword for SCRAM-SHA-512: what the broker stores and checks proofs against."""
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


async def set_scram_password(admin: AIOKafkaAdminClient, username: str, password: str) -> None:
    """Creates the SCRAM-SHA-512 user or replaces its password (a rotation: the old one stops working)."""
    salt = secrets.token_bytes(32)
    upsert: _ScramChange = (username, _SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted_password(password, salt), {})
    response = await _send(admin, _AlterScram([], [upsert]))
    for name, code, message, _tags in response.results:
        _raise_for(code, message, f"could not set the password of {name}")


async def delete_scram_user(admin: AIOKafkaAdminClient, username: str) -> bool:
    """Removes the user's SCRAM-SHA-512 credential; False when it had none."""
    response = await _send(admin, _AlterScram([(username, _SCRAM_SHA_512, {})], []))
    for _name, code, message, _tags in response.results:
        if code == _RESOURCE_NOT_FOUND:
            return False
        _raise_for(code, message, f"could not remove the credential of {username}")
    return True


async def scram_users(admin: AIOKafkaAdminClient) -> list[str]:
    """Every user that has a SCRAM credential, by name (never its credential)."""
    response = await _send(admin, _DescribeScram())
    _raise_for(response.error_code, response.error_message, "could not list SCRAM users")
    return sorted(name for name, code, _message, _infos, _tags in response.results if not code)


#: ResourceNotFoundException: the user has no such credential.
_RESOURCE_NOT_FOUND = 91
