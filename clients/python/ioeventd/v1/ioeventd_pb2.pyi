from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

BAR_NOT_MAPPABLE: Reason
BAR_OUT_OF_RANGE: Reason
DATA_OUT_OF_RANGE: Reason
DESCRIPTOR: _descriptor.FileDescriptor
DEVICE_NOT_FOUND: Reason
DEVICE_NOT_MANAGED: Reason
DUPLICATE: Reason
ENGINE_FAILURE: Reason
INVALID_ARGUMENT: Reason
INVALID_LABEL: Reason
INVALID_OWNER: Reason
INVALID_PAGE_TOKEN: Reason
JOURNAL_UNAVAILABLE: Reason
LIMIT_REACHED: Reason
NOT_FOUND: Reason
OUT_OF_BAR: Reason
OVERLAPS_MSIX_PBA: Reason
OVERLAPS_MSIX_TABLE: Reason
PERMISSION_DENIED: Reason
RATE_LIMITED: Reason
REASON_UNSPECIFIED: Reason
RECONCILE: RemovalCause
REMOVAL_CAUSE_UNSPECIFIED: RemovalCause
REQUEST: RemovalCause
REQUEST_ID_REUSED: Reason
SHUTTING_DOWN: Reason
SOURCE_ACCESS_DENIED: Reason
SOURCE_EXIT: RemovalCause
SOURCE_FD_INVALID: Reason
SOURCE_NOT_EVENTFD: Reason
SOURCE_PROCESS_GONE: Reason
UNALIGNED: Reason
VFIO_DEVICE_INVALID: Reason
WATCH_TOO_SLOW: Reason
WIDTH_UNSUPPORTED: Reason

class AgentInfo(_message.Message):
    __slots__ = ["api_versions", "build", "capabilities", "hostname", "limits", "machine_id", "ready", "started_at", "version", "warnings"]
    API_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MACHINE_ID_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    api_versions: _containers.RepeatedScalarFieldContainer[str]
    build: str
    capabilities: Capabilities
    hostname: str
    limits: Limits
    machine_id: str
    ready: bool
    started_at: _timestamp_pb2.Timestamp
    version: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., build: _Optional[str] = ..., hostname: _Optional[str] = ..., machine_id: _Optional[str] = ..., api_versions: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., capabilities: _Optional[_Union[Capabilities, _Mapping]] = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ready: bool = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class Bar(_message.Message):
    __slots__ = ["eligible", "index", "ineligible_reason", "is_64bit", "kind", "length", "mappable", "prefetchable", "start"]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    INELIGIBLE_REASON_FIELD_NUMBER: _ClassVar[int]
    IS_64BIT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAPPABLE_FIELD_NUMBER: _ClassVar[int]
    PREFETCHABLE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    eligible: bool
    index: int
    ineligible_reason: str
    is_64bit: bool
    kind: str
    length: int
    mappable: bool
    prefetchable: bool
    start: int
    def __init__(self, index: _Optional[int] = ..., kind: _Optional[str] = ..., start: _Optional[int] = ..., length: _Optional[int] = ..., is_64bit: bool = ..., prefetchable: bool = ..., mappable: bool = ..., eligible: bool = ..., ineligible_reason: _Optional[str] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ["backends", "eight_byte_writes", "eight_byte_writes_reason", "features", "poll_mode", "poll_modes", "widths", "workers"]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    EIGHT_BYTE_WRITES_FIELD_NUMBER: _ClassVar[int]
    EIGHT_BYTE_WRITES_REASON_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    POLL_MODES_FIELD_NUMBER: _ClassVar[int]
    POLL_MODE_FIELD_NUMBER: _ClassVar[int]
    WIDTHS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    backends: _containers.RepeatedScalarFieldContainer[str]
    eight_byte_writes: bool
    eight_byte_writes_reason: str
    features: _containers.RepeatedScalarFieldContainer[str]
    poll_mode: str
    poll_modes: _containers.RepeatedScalarFieldContainer[str]
    widths: _containers.RepeatedScalarFieldContainer[int]
    workers: int
    def __init__(self, widths: _Optional[_Iterable[int]] = ..., eight_byte_writes: bool = ..., eight_byte_writes_reason: _Optional[str] = ..., backends: _Optional[_Iterable[str]] = ..., poll_modes: _Optional[_Iterable[str]] = ..., poll_mode: _Optional[str] = ..., workers: _Optional[int] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateIoeventfdRequest(_message.Message):
    __slots__ = ["owner", "request_id", "spec", "validate_only"]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    owner: str
    request_id: str
    spec: IoeventfdSpec
    validate_only: bool
    def __init__(self, spec: _Optional[_Union[IoeventfdSpec, _Mapping]] = ..., owner: _Optional[str] = ..., request_id: _Optional[str] = ..., validate_only: bool = ...) -> None: ...

class DeleteIoeventfdRequest(_message.Message):
    __slots__ = ["id", "key"]
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: IoeventfdKey
    def __init__(self, id: _Optional[str] = ..., key: _Optional[_Union[IoeventfdKey, _Mapping]] = ...) -> None: ...

class DeleteIoeventfdResponse(_message.Message):
    __slots__ = ["deleted"]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: Ioeventfd
    def __init__(self, deleted: _Optional[_Union[Ioeventfd, _Mapping]] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ["address", "bars", "class_code", "config_error", "device_id", "driver", "ioeventfds", "ioeventfds_limit", "iommu_group", "managed", "memory_decode", "msix", "numa_node", "revision", "simulated", "subsystem_device_id", "subsystem_vendor_id", "unmanaged_reason", "vendor_id"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    CLASS_CODE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ERROR_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    IOEVENTFDS_FIELD_NUMBER: _ClassVar[int]
    IOEVENTFDS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    IOMMU_GROUP_FIELD_NUMBER: _ClassVar[int]
    MANAGED_FIELD_NUMBER: _ClassVar[int]
    MEMORY_DECODE_FIELD_NUMBER: _ClassVar[int]
    MSIX_FIELD_NUMBER: _ClassVar[int]
    NUMA_NODE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    SUBSYSTEM_DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSYSTEM_VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    UNMANAGED_REASON_FIELD_NUMBER: _ClassVar[int]
    VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    address: str
    bars: _containers.RepeatedCompositeFieldContainer[Bar]
    class_code: int
    config_error: str
    device_id: int
    driver: str
    ioeventfds: int
    ioeventfds_limit: int
    iommu_group: int
    managed: bool
    memory_decode: bool
    msix: Msix
    numa_node: int
    revision: int
    simulated: bool
    subsystem_device_id: int
    subsystem_vendor_id: int
    unmanaged_reason: str
    vendor_id: int
    def __init__(self, address: _Optional[str] = ..., vendor_id: _Optional[int] = ..., device_id: _Optional[int] = ..., subsystem_vendor_id: _Optional[int] = ..., subsystem_device_id: _Optional[int] = ..., class_code: _Optional[int] = ..., revision: _Optional[int] = ..., driver: _Optional[str] = ..., iommu_group: _Optional[int] = ..., numa_node: _Optional[int] = ..., bars: _Optional[_Iterable[_Union[Bar, _Mapping]]] = ..., msix: _Optional[_Union[Msix, _Mapping]] = ..., memory_decode: bool = ..., managed: bool = ..., unmanaged_reason: _Optional[str] = ..., simulated: bool = ..., config_error: _Optional[str] = ..., ioeventfds: _Optional[int] = ..., ioeventfds_limit: _Optional[int] = ...) -> None: ...

class GetAgentInfoRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetDeviceRequest(_message.Message):
    __slots__ = ["address"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class GetIoeventfdRequest(_message.Message):
    __slots__ = ["id"]
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Ioeventfd(_message.Message):
    __slots__ = ["backend", "created_at", "id", "last_trigger_time", "orphan_cause", "owner", "request_id", "signals", "source_eventfd_id", "source_start_time", "spec", "state", "triggers", "vfio_device_start_time"]
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = []
    ARMED: Ioeventfd.State
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LAST_TRIGGER_TIME_FIELD_NUMBER: _ClassVar[int]
    NEEDS_SOURCE: Ioeventfd.State
    ORPHANED: Ioeventfd.State
    ORPHAN_CAUSE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENTFD_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_START_TIME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_UNSPECIFIED: Ioeventfd.State
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    VFIO_DEVICE_START_TIME_FIELD_NUMBER: _ClassVar[int]
    backend: str
    created_at: _timestamp_pb2.Timestamp
    id: str
    last_trigger_time: _timestamp_pb2.Timestamp
    orphan_cause: str
    owner: str
    request_id: str
    signals: int
    source_eventfd_id: int
    source_start_time: int
    spec: IoeventfdSpec
    state: Ioeventfd.State
    triggers: int
    vfio_device_start_time: int
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[IoeventfdSpec, _Mapping]] = ..., owner: _Optional[str] = ..., state: _Optional[_Union[Ioeventfd.State, str]] = ..., backend: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., source_start_time: _Optional[int] = ..., source_eventfd_id: _Optional[int] = ..., triggers: _Optional[int] = ..., signals: _Optional[int] = ..., last_trigger_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., vfio_device_start_time: _Optional[int] = ..., orphan_cause: _Optional[str] = ...) -> None: ...

class IoeventfdEvent(_message.Message):
    __slots__ = ["cause", "ioeventfd", "revision", "snapshot", "type"]
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = []
    ADDED: IoeventfdEvent.Type
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    IOEVENTFD_FIELD_NUMBER: _ClassVar[int]
    REMOVED: IoeventfdEvent.Type
    RESUMED: IoeventfdEvent.Type
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT: IoeventfdEvent.Type
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TYPE_UNSPECIFIED: IoeventfdEvent.Type
    UPDATED: IoeventfdEvent.Type
    cause: RemovalCause
    ioeventfd: Ioeventfd
    revision: int
    snapshot: _containers.RepeatedCompositeFieldContainer[Ioeventfd]
    type: IoeventfdEvent.Type
    def __init__(self, type: _Optional[_Union[IoeventfdEvent.Type, str]] = ..., ioeventfd: _Optional[_Union[Ioeventfd, _Mapping]] = ..., cause: _Optional[_Union[RemovalCause, str]] = ..., snapshot: _Optional[_Iterable[_Union[Ioeventfd, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class IoeventfdKey(_message.Message):
    __slots__ = ["bar", "data", "device", "offset", "width"]
    BAR_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    bar: int
    data: int
    device: str
    offset: int
    width: int
    def __init__(self, device: _Optional[str] = ..., bar: _Optional[int] = ..., offset: _Optional[int] = ..., width: _Optional[int] = ..., data: _Optional[int] = ...) -> None: ...

class IoeventfdSpec(_message.Message):
    __slots__ = ["bar", "data", "device", "labels", "offset", "source", "vfio_device", "width"]
    class LabelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BAR_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VFIO_DEVICE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    bar: int
    data: int
    device: str
    labels: _containers.ScalarMap[str, str]
    offset: int
    source: Source
    vfio_device: Source
    width: int
    def __init__(self, device: _Optional[str] = ..., bar: _Optional[int] = ..., offset: _Optional[int] = ..., width: _Optional[int] = ..., data: _Optional[int] = ..., source: _Optional[_Union[Source, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., vfio_device: _Optional[_Union[Source, _Mapping]] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ["max_per_device", "max_per_owner"]
    MAX_PER_DEVICE_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_OWNER_FIELD_NUMBER: _ClassVar[int]
    max_per_device: int
    max_per_owner: int
    def __init__(self, max_per_device: _Optional[int] = ..., max_per_owner: _Optional[int] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ["managed_only", "rescan"]
    MANAGED_ONLY_FIELD_NUMBER: _ClassVar[int]
    RESCAN_FIELD_NUMBER: _ClassVar[int]
    managed_only: bool
    rescan: bool
    def __init__(self, managed_only: bool = ..., rescan: bool = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ["devices"]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ...) -> None: ...

class ListIoeventfdsRequest(_message.Message):
    __slots__ = ["device", "labels", "owner", "page_size", "page_token"]
    class LabelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    device: str
    labels: _containers.ScalarMap[str, str]
    owner: str
    page_size: int
    page_token: str
    def __init__(self, device: _Optional[str] = ..., owner: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListIoeventfdsResponse(_message.Message):
    __slots__ = ["ioeventfds", "next_page_token", "total_size"]
    IOEVENTFDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    ioeventfds: _containers.RepeatedCompositeFieldContainer[Ioeventfd]
    next_page_token: str
    total_size: int
    def __init__(self, ioeventfds: _Optional[_Iterable[_Union[Ioeventfd, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class Msix(_message.Message):
    __slots__ = ["enabled", "function_mask", "pba", "present", "table", "table_size"]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_MASK_FIELD_NUMBER: _ClassVar[int]
    PBA_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    TABLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    function_mask: bool
    pba: Region
    present: bool
    table: Region
    table_size: int
    def __init__(self, present: bool = ..., table_size: _Optional[int] = ..., table: _Optional[_Union[Region, _Mapping]] = ..., pba: _Optional[_Union[Region, _Mapping]] = ..., enabled: bool = ..., function_mask: bool = ...) -> None: ...

class ReconcileOwnerRequest(_message.Message):
    __slots__ = ["desired", "dry_run", "owner"]
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    desired: _containers.RepeatedCompositeFieldContainer[IoeventfdSpec]
    dry_run: bool
    owner: str
    def __init__(self, owner: _Optional[str] = ..., desired: _Optional[_Iterable[_Union[IoeventfdSpec, _Mapping]]] = ..., dry_run: bool = ...) -> None: ...

class ReconcileOwnerResponse(_message.Message):
    __slots__ = ["added", "kept", "removed"]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    added: _containers.RepeatedCompositeFieldContainer[Ioeventfd]
    kept: _containers.RepeatedCompositeFieldContainer[Ioeventfd]
    removed: _containers.RepeatedCompositeFieldContainer[Ioeventfd]
    def __init__(self, added: _Optional[_Iterable[_Union[Ioeventfd, _Mapping]]] = ..., kept: _Optional[_Iterable[_Union[Ioeventfd, _Mapping]]] = ..., removed: _Optional[_Iterable[_Union[Ioeventfd, _Mapping]]] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ["bar", "length", "offset"]
    BAR_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    bar: int
    length: int
    offset: int
    def __init__(self, bar: _Optional[int] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ["fd", "handle", "pid"]
    FD_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    fd: int
    handle: str
    pid: int
    def __init__(self, pid: _Optional[int] = ..., fd: _Optional[int] = ..., handle: _Optional[str] = ...) -> None: ...

class WatchIoeventfdsRequest(_message.Message):
    __slots__ = ["device", "owner", "since_revision"]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    device: str
    owner: str
    since_revision: int
    def __init__(self, device: _Optional[str] = ..., owner: _Optional[str] = ..., since_revision: _Optional[int] = ...) -> None: ...

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class RemovalCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
