"""Typed BPF maps: keys and values as Python records, over a byte-level MapHandle.

The wrappers here turn a :class:`~typedmaps.handle.MapHandle` (or a
:class:`~typedmaps.object.Map`, its subclass) into typed containers, using
one construct schema for the key and one for the value::

    flows = TypedMap(h, key=DataclassStruct(FlowKey), value=DataclassStruct(FlowStats))
    # mypy infers TypedMap[FlowKey, FlowStats]: no annotation needed

==========================  ============================  ===========================
map type                    wrapper                       element type
==========================  ============================  ===========================
HASH, ARRAY, LRU_HASH,      :class:`TypedMap`             ``MutableMapping[K, V]``
LPM_TRIE, ...
PERCPU_HASH, PERCPU_ARRAY,  :class:`PerCpuTypedMap`       ``MutableMapping[K, list[V]]``
LRU_PERCPU_HASH, ...
QUEUE                       :class:`TypedQueue`           push / pop / peek / drain
STACK                       :class:`TypedStack`           push / pop / peek / drain
BLOOM_FILTER                :class:`TypedBloomFilter`     add / ``in``
==========================  ============================  ===========================

:func:`typed` picks the wrapper from the map type.

Checks happen once, when a wrapper is made: the map type must fit the
wrapper (a per-CPU map names :class:`PerCpuTypedMap`, a QUEUE names
:class:`TypedQueue`, ...) and each schema's size must equal the map's key or
value size (:class:`~typedmaps.errors.SizeMismatchError` naming the schema,
its size and the map's). After that, every operation encodes its arguments
first: a value that does not fit its schema raises
:class:`~typedmaps.errors.CodecError` before any syscall, and the map is
unchanged.

Wrappers do not own the handle: closing the handle (or the wrapper, which
closes its handle) makes every wrapper over it raise
:class:`~typedmaps.errors.MapClosedError`.

Speed: ``m[k]``, ``m.get(k)``, ``m[k] = v`` and ``k in m`` do one closed
check, one encode, the syscall and one decode, with the codec methods bound
once in ``__init__``. Full reads (``items()``, ``values()``, iteration, ``len``)
use BPF_MAP_LOOKUP_BATCH where the kernel has it for the map type (HASH,
ARRAY, LRU and their per-CPU forms; LPM_TRIE since Linux 6.x), in chunks of
at most 4096 elements, and decode them in slices of 128 (keys and values
in one generated loop) handed out before the next slice is made: records
a caller drops as it goes never build up enough to wake the cyclic GC,
whose global state is never touched; memory stays bounded on maps of
millions of entries. Where the kernel answers ENOTSUPP (e.g. DEVMAP_HASH, or an older
kernel), the map is walked key by key with BPF_MAP_GET_NEXT_KEY instead, and
each value is looked up by the raw key bytes the kernel returned, never by a
re-encoded key (a key written by BPF code may have non-zero padding that a
decode/encode round trip would lose).

Static typing: the wrappers take schemas as ``Construct[K, K]`` (parses to
and builds from ``K``), not ``Construct[K, Any]``. With ``Any`` in the build
position mypy solves ``DataclassStruct``'s type variable from that ``Any``
when the schema is written inline (``key=DataclassStruct(FlowKey)``) and
infers ``TypedMap[Any, ...]``; with ``K`` in both positions it infers
``TypedMap[FlowKey, ...]``. The element type is the schema's *parsed* type:
a ``cs.Array`` value is a ``ListContainer``, an ``Enum`` value is
``EnumInteger | EnumIntegerString``.
"""

from .events import TypedPerfBuffer, TypedRingBuffer, TypedUserRingBuffer
from .factory import AnyTyped, typed
from .globals import Globals
from .keyed import TypedMap
from .keyless import TypedBloomFilter, TypedQueue, TypedStack
from .of_maps import (
    CpuMap,
    CpuMapEntry,
    DevMap,
    DevMapEntry,
    MapOfMaps,
    ProgramArray,
    SockMap,
    XskMap,
    socket_cookie,
)
from .percpu import PerCpuTypedMap
from .storage import (
    PidFd,
    TypedCgroupStorage,
    TypedInodeStorage,
    TypedSkStorage,
    TypedTaskStorage,
)

__all__ = [
    "AnyTyped",
    "CpuMap",
    "CpuMapEntry",
    "DevMap",
    "DevMapEntry",
    "Globals",
    "MapOfMaps",
    "PerCpuTypedMap",
    "PidFd",
    "ProgramArray",
    "SockMap",
    "TypedBloomFilter",
    "TypedCgroupStorage",
    "TypedInodeStorage",
    "TypedMap",
    "TypedPerfBuffer",
    "TypedQueue",
    "TypedRingBuffer",
    "TypedSkStorage",
    "TypedStack",
    "TypedTaskStorage",
    "TypedUserRingBuffer",
    "XskMap",
    "socket_cookie",
    "typed",
]
