"""libvirt's error model: one exception carrying (code, domain, message) as it crosses the wire.

Codes and domains are libvirt's numbers (virerror.h, libvirt 9.0); the message is the template filled
with the detail, exactly what libvirt's virErrorMsg() produces, so clients see the same text.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """virErrorNumber."""

    OK = 0
    INTERNAL_ERROR = 1
    NO_MEMORY = 2
    NO_SUPPORT = 3
    UNKNOWN_HOST = 4
    NO_CONNECT = 5
    INVALID_CONN = 6
    INVALID_DOMAIN = 7
    INVALID_ARG = 8
    OPERATION_FAILED = 9
    OS_TYPE = 16
    NO_KERNEL = 17
    NO_SOURCE = 19
    NO_TARGET = 20
    NO_NAME = 21
    NO_OS = 22
    NO_DEVICE = 23
    XML_ERROR = 27
    DOM_EXIST = 28
    OPERATION_DENIED = 29
    OPEN_FAILED = 30
    READ_FAILED = 31
    PARSE_FAILED = 32
    CONF_SYNTAX = 33
    WRITE_FAILED = 34
    XML_DETAIL = 35
    INVALID_NETWORK = 36
    NETWORK_EXIST = 37
    SYSTEM_ERROR = 38
    RPC = 39
    GNUTLS_ERROR = 40
    NO_DOMAIN = 42
    NO_NETWORK = 43
    INVALID_MAC = 44
    AUTH_FAILED = 45
    INVALID_STORAGE_POOL = 46
    INVALID_STORAGE_VOL = 47
    NO_STORAGE_POOL = 49
    NO_STORAGE_VOL = 50
    NO_NODE_DEVICE = 53
    NO_SECURITY_MODEL = 54
    OPERATION_INVALID = 55
    NO_SECRET = 66
    CONFIG_UNSUPPORTED = 67
    OPERATION_TIMEOUT = 68
    NO_DOMAIN_SNAPSHOT = 72
    INVALID_STREAM = 73
    ARGUMENT_UNSUPPORTED = 74
    OPERATION_ABORTED = 78
    AUTH_CANCELLED = 79
    NO_DOMAIN_METADATA = 80
    OVERFLOW = 82
    OPERATION_UNSUPPORTED = 84
    AGENT_UNRESPONSIVE = 86
    RESOURCE_BUSY = 87
    ACCESS_DENIED = 88
    STORAGE_VOL_EXIST = 90
    CPU_INCOMPATIBLE = 91
    XML_INVALID_SCHEMA = 92
    AUTH_UNAVAILABLE = 94
    DEVICE_MISSING = 99
    NO_DOMAIN_CHECKPOINT = 103
    NO_HOSTNAME = 108


class ErrorDomain(IntEnum):
    """virErrorDomain: which part of libvirt raised the error."""

    NONE = 0
    XML = 5
    DOM = 6
    RPC = 7
    CONF = 9
    QEMU = 10
    NET = 11
    TEST = 12
    REMOTE = 13
    STORAGE = 18
    NETWORK = 19
    DOMAIN = 20
    NODEDEV = 22
    SECURITY = 24
    SECRET = 30
    CPU = 31
    STREAMS = 38
    ACCESS = 55


class ErrorLevel(IntEnum):
    NONE = 0
    WARNING = 1
    ERROR = 2


# (template without detail, template with detail) from libvirt's virErrorMsg(); codes not listed use
# the detail alone.
_TEMPLATES: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.INTERNAL_ERROR: ("internal error", "internal error: %s"),
    ErrorCode.NO_MEMORY: ("out of memory", "out of memory: %s"),
    ErrorCode.NO_SUPPORT: (
        "this function is not supported by the connection driver",
        "this function is not supported by the connection driver: %s",
    ),
    ErrorCode.NO_CONNECT: ("no connection driver available", "no connection driver available for %s"),
    ErrorCode.INVALID_CONN: ("invalid connection pointer in", "invalid connection pointer in %s"),
    ErrorCode.INVALID_DOMAIN: ("invalid domain pointer in", "invalid domain pointer in %s"),
    ErrorCode.INVALID_ARG: ("invalid argument", "invalid argument: %s"),
    ErrorCode.OPERATION_FAILED: ("operation failed", "operation failed: %s"),
    ErrorCode.OS_TYPE: ("unknown OS type", "unknown OS type %s"),
    ErrorCode.NO_KERNEL: ("missing kernel information", "missing kernel information: %s"),
    ErrorCode.NO_SOURCE: ("missing source information for device", "missing source information for device %s"),
    ErrorCode.NO_TARGET: ("missing target information for device", "missing target information for device %s"),
    ErrorCode.NO_NAME: ("missing name information", "missing name information in %s"),
    ErrorCode.NO_OS: ("missing operating system information", "missing operating system information for %s"),
    ErrorCode.NO_DEVICE: ("missing devices information", "missing devices information for %s"),
    ErrorCode.XML_ERROR: ("XML description is invalid or not well formed", "XML error: %s"),
    ErrorCode.DOM_EXIST: ("this domain exists already", "domain %s exists already"),
    ErrorCode.OPERATION_DENIED: (
        "operation forbidden for read only access",
        "operation forbidden: %s",
    ),
    ErrorCode.OPEN_FAILED: ("failed to open configuration file", "failed to open configuration file %s"),
    ErrorCode.READ_FAILED: ("failed to read configuration file", "failed to read configuration file %s"),
    ErrorCode.PARSE_FAILED: ("failed to parse configuration file", "failed to parse configuration file %s"),
    ErrorCode.CONF_SYNTAX: ("configuration file syntax error", "configuration file syntax error: %s"),
    ErrorCode.WRITE_FAILED: ("failed to write configuration file", "failed to write configuration file: %s"),
    ErrorCode.XML_DETAIL: ("parser error", "%s"),
    ErrorCode.INVALID_NETWORK: ("invalid network pointer in", "invalid network pointer in %s"),
    ErrorCode.NETWORK_EXIST: ("this network exists already", "network %s exists already"),
    ErrorCode.SYSTEM_ERROR: ("system call error", "%s"),
    ErrorCode.RPC: ("RPC error", "%s"),
    ErrorCode.GNUTLS_ERROR: ("GNUTLS call error", "%s"),
    ErrorCode.NO_DOMAIN: ("Domain not found", "Domain not found: %s"),
    ErrorCode.NO_NETWORK: ("Network not found", "Network not found: %s"),
    ErrorCode.INVALID_MAC: ("invalid MAC address", "invalid MAC address: %s"),
    ErrorCode.AUTH_FAILED: ("authentication failed", "authentication failed: %s"),
    ErrorCode.INVALID_STORAGE_POOL: ("invalid storage pool pointer in", "invalid storage pool pointer in %s"),
    ErrorCode.INVALID_STORAGE_VOL: ("invalid storage volume pointer in", "invalid storage volume pointer in %s"),
    ErrorCode.NO_STORAGE_POOL: ("Storage pool not found", "Storage pool not found: %s"),
    ErrorCode.NO_STORAGE_VOL: ("Storage volume not found", "Storage volume not found: %s"),
    ErrorCode.NO_NODE_DEVICE: ("Node device not found", "Node device not found: %s"),
    ErrorCode.NO_SECURITY_MODEL: ("Security model not found", "Security model not found: %s"),
    ErrorCode.OPERATION_INVALID: ("Requested operation is not valid", "Requested operation is not valid: %s"),
    ErrorCode.NO_SECRET: ("Secret not found", "Secret not found: %s"),
    ErrorCode.CONFIG_UNSUPPORTED: ("unsupported configuration", "unsupported configuration: %s"),
    ErrorCode.OPERATION_TIMEOUT: ("Timed out during operation", "Timed out during operation: %s"),
    ErrorCode.INVALID_STREAM: ("invalid stream pointer in", "invalid stream pointer in %s"),
    ErrorCode.ARGUMENT_UNSUPPORTED: ("argument unsupported", "argument unsupported: %s"),
    ErrorCode.OPERATION_ABORTED: ("operation aborted", "operation aborted: %s"),
    ErrorCode.AUTH_CANCELLED: ("authentication cancelled", "authentication cancelled: %s"),
    ErrorCode.NO_DOMAIN_METADATA: ("metadata not found", "metadata not found: %s"),
    ErrorCode.NO_DOMAIN_SNAPSHOT: ("Domain snapshot not found", "Domain snapshot not found: %s"),
    ErrorCode.NO_DOMAIN_CHECKPOINT: ("Domain checkpoint not found", "Domain checkpoint not found: %s"),
    ErrorCode.NO_HOSTNAME: ("no hostname found", "no hostname found: %s"),
    ErrorCode.OVERFLOW: ("numerical overflow", "numerical overflow: %s"),
    ErrorCode.OPERATION_UNSUPPORTED: ("Operation not supported", "Operation not supported: %s"),
    ErrorCode.AGENT_UNRESPONSIVE: (
        "Guest agent is not responding",
        "Guest agent is not responding: %s",
    ),
    ErrorCode.RESOURCE_BUSY: ("resource busy", "resource busy: %s"),
    ErrorCode.ACCESS_DENIED: ("access denied", "access denied: %s"),
    ErrorCode.STORAGE_VOL_EXIST: ("this storage volume exists already", "storage volume %s exists already"),
    ErrorCode.CPU_INCOMPATIBLE: ("the CPU is incompatible with host CPU", "the CPU is incompatible with host CPU: %s"),
    ErrorCode.XML_INVALID_SCHEMA: (
        "XML document failed to validate against schema",
        "XML document failed to validate against schema: %s",
    ),
    ErrorCode.AUTH_UNAVAILABLE: ("authentication unavailable", "authentication unavailable: %s"),
    ErrorCode.DEVICE_MISSING: ("device not found", "device not found: %s"),
}


def message_template(code: int, with_detail: bool = True) -> str:
    """libvirt's template for `code`, which libvirt-python reports as str1."""
    try:
        plain, detailed = _TEMPLATES[ErrorCode(code)]
    except (ValueError, KeyError):
        return "%s" if with_detail else "unknown error"
    return detailed if with_detail else plain


class VirtError(Exception):
    """An error in libvirt's terms. `str(e)` is the full message a libvirt client would print."""

    def __init__(
        self,
        code: int,
        detail: str | None = None,
        domain: int = ErrorDomain.NONE,
        level: int = ErrorLevel.ERROR,
    ) -> None:
        self.code = int(code)
        self.domain = int(domain)
        self.detail = detail
        self.level = int(level)
        self.template = message_template(self.code, detail is not None)
        self.message = self.template.replace("%s", detail) if detail is not None else self.template
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"VirtError(code={self.code}, domain={self.domain}, message={self.message!r})"


def error_factory(domain: int) -> type[VirtError]:
    """A VirtError subclass bound to one error domain: a module's `VIR_FROM_THIS`.

    Usage: `Error = error_factory(ErrorDomain.QEMU)`; `raise Error(ErrorCode.OPERATION_INVALID, "domain is not running")`.
    """

    class _DomainError(VirtError):
        def __init__(self, code: int, detail: str | None = None, level: int = ErrorLevel.ERROR) -> None:
            super().__init__(code, detail, domain=domain, level=level)

    _DomainError.__name__ = f"VirtError_{ErrorDomain(domain).name}"
    _DomainError.__qualname__ = _DomainError.__name__
    return _DomainError


def invalid_arg(
    message: str, function: str | None = None, domain: int = ErrorDomain.NONE, *, argument: str | None = None
) -> VirtError:
    """libvirt's virReportInvalidArg: VIR_ERR_INVALID_ARG printed without the "invalid argument:" prefix;
    str1 is the function that refused (when given), str2 the argument it names (else the message)."""
    err = VirtError(ErrorCode.INVALID_ARG, argument if argument is not None else message, domain)
    err.message = message
    err.args = (message,)
    if function is not None:
        err.template = function
    return err


def check_flags(flags: int, allowed: int, function: str, domain: int = ErrorDomain.NONE) -> None:
    """libvirt's virCheckFlags: unknown bits are refused, naming the function (and `domain`, its
    VIR_FROM_THIS)."""
    if flags & ~allowed:
        message = f"unsupported flags (0x{flags & ~allowed:x}) in function {function}"
        raise invalid_arg(message, function, domain, argument="flags")


def exclusive_flags(flag1: str, flag2: str, domain: int, function: str | None = None) -> VirtError:
    """VIR_EXCLUSIVE_FLAGS_*: two flags that may not be given together (virReportInvalidArg on `ctl`)."""
    return invalid_arg(f"Flags '{flag1}' and '{flag2}' are mutually exclusive", function, domain, argument="ctl")

