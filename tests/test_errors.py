"""The error tree: classes, errno mapping, messages, pickling (no kernel needed)."""

from __future__ import annotations

import errno
import pickle

import pytest

import typedmaps as tm
from typedmaps import errors
from typedmaps.errors import ENOTSUPP, batch_error_from_errno, error_from_errno


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (tm.MapError, (tm.TypedMapsError, OSError)),
        (tm.KeyNotFoundError, (tm.MapError, KeyError, LookupError, OSError)),
        (tm.KeyExistsError, (tm.MapError,)),
        (tm.MapFullError, (tm.MapError,)),
        (tm.MapPermissionError, (tm.MapError, PermissionError, OSError)),
        (tm.NotSupportedError, (tm.MapError,)),
        (tm.BatchError, (tm.MapError,)),
        (tm.IterationAbortedError, (tm.MapError,)),
        (tm.SizeMismatchError, (tm.TypedMapsError, ValueError)),
        (tm.CodecError, (tm.TypedMapsError, ValueError)),
        (tm.MapClosedError, (tm.TypedMapsError,)),
        (tm.LibbpfNotFoundError, (tm.TypedMapsError, ImportError)),
    ],
)
def test_tree_shape(cls: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    for base in (*bases, tm.TypedMapsError, Exception):
        assert issubclass(cls, base), (cls, base)


def test_closed_and_size_errors_are_not_oserrors() -> None:
    assert not issubclass(tm.MapClosedError, OSError)
    assert not issubclass(tm.SizeMismatchError, OSError)
    assert not issubclass(tm.KeyExistsError, KeyError)


@pytest.mark.parametrize(
    ("err", "cls"),
    [
        (errno.ENOENT, tm.KeyNotFoundError),
        (errno.EEXIST, tm.KeyExistsError),
        (errno.E2BIG, tm.MapFullError),
        (errno.ENOSPC, tm.MapFullError),
        (errno.EPERM, tm.MapPermissionError),
        (errno.EACCES, tm.MapPermissionError),
        (errno.EOPNOTSUPP, tm.NotSupportedError),
        (ENOTSUPP, tm.NotSupportedError),
        (errno.EINVAL, tm.MapError),
        (errno.EBUSY, tm.MapError),
    ],
)
def test_errno_mapping_takes_either_sign(err: int, cls: type[tm.MapError]) -> None:
    for signed in (err, -err):
        e = error_from_errno(signed, "lookup")
        assert type(e) is cls
        assert e.errno == err  # positive, whatever sign came in
        assert e.operation == "lookup"
        assert str(e).startswith("lookup: ")
        assert str(e).endswith(f"[errno {err}]")


def test_einval_unsupported_switch() -> None:
    plain = error_from_errno(-errno.EINVAL, "delete")
    assert type(plain) is tm.MapError
    unsupported = error_from_errno(-errno.EINVAL, "delete", einval_unsupported=True)
    assert isinstance(unsupported, tm.NotSupportedError)
    assert "not supported" in str(unsupported)


def test_messages_name_the_operation_and_reason() -> None:
    assert str(error_from_errno(errno.ENOENT, "delete")) == "delete: key not found [errno 2]"
    assert "key already exists" in str(error_from_errno(errno.EEXIST, "update"))
    assert "map is full" in str(error_from_errno(errno.E2BIG, "update"))
    assert "operation not supported" in str(error_from_errno(ENOTSUPP, "x"))
    assert "custom" in str(error_from_errno(errno.ENOENT, "pin /x", detail="custom"))


def test_key_not_found_str_is_not_keyerror_repr() -> None:
    e = tm.KeyNotFoundError(errno.ENOENT, "lookup")
    # KeyError's own __str__ would print the args tuple.
    assert str(e) == "lookup: key not found [errno 2]"
    with pytest.raises(KeyError):
        raise e


def test_size_mismatch_carries_fields() -> None:
    e = tm.SizeMismatchError("update: key", 3, 4, "hint")
    assert (e.what, e.size, e.expected) == ("update: key", 3, 4)
    assert str(e) == "update: key is 3 bytes, expected 4 (hint)"


def test_codec_error_shortens_long_values() -> None:
    e = tm.CodecError("value.x", b"a" * 500, "too long")
    assert (e.path, e.reason) == ("value.x", "too long")
    assert len(str(e)) < 150
    assert str(e).startswith("value.x: cannot encode")


@pytest.mark.parametrize(
    ("err", "named"),
    [
        (errno.ENOENT, tm.KeyNotFoundError),
        (errno.EEXIST, tm.KeyExistsError),
        (errno.E2BIG, tm.MapFullError),
        (errno.EPERM, tm.MapPermissionError),
        (ENOTSUPP, tm.NotSupportedError),
    ],
)
def test_batch_error_is_also_the_named_error(err: int, named: type[tm.MapError]) -> None:
    e = batch_error_from_errno(-err, "delete_batch", 3)
    assert isinstance(e, tm.BatchError)
    assert isinstance(e, named)
    assert e.cause is named
    assert e.processed == 3
    assert e.errno == err
    assert "after 3 element(s)" in str(e)
    assert str(e).startswith("delete_batch: ")
    with pytest.raises(named):
        raise e


def test_batch_error_for_an_unnamed_errno_is_plain() -> None:
    e = batch_error_from_errno(errno.EFAULT, "update_batch", 0)
    assert type(e) is tm.BatchError
    assert e.cause is tm.MapError


def test_batch_error_with_explicit_class() -> None:
    e = batch_error_from_errno(errno.E2BIG, "update_batch", 1, cls=tm.KeyNotFoundError)
    assert isinstance(e, tm.KeyNotFoundError)
    assert isinstance(e, KeyError)
    assert e.errno == errno.E2BIG


@pytest.mark.parametrize(
    "exc",
    [
        tm.MapError(errno.EINVAL, "create HASH", "refused"),
        tm.KeyNotFoundError(errno.ENOENT, "lookup"),
        tm.MapPermissionError(errno.EPERM, "update", "frozen"),
        tm.BatchError(errno.EFAULT, "update_batch", 2),
        batch_error_from_errno(errno.ENOENT, "delete_batch", 5, detail="gone"),
        tm.IterationAbortedError(errno.EINTR, "keys", "aborted"),
    ],
)
def test_errors_pickle_round_trip(exc: tm.MapError) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.errno == exc.errno
    assert back.operation == exc.operation
    if isinstance(exc, tm.BatchError):
        assert isinstance(back, tm.BatchError)
        assert back.processed == exc.processed


def test_batch_classes_live_in_errors_module() -> None:
    for name in (
        "BatchKeyNotFoundError",
        "BatchKeyExistsError",
        "BatchMapFullError",
        "BatchMapPermissionError",
        "BatchNotSupportedError",
    ):
        cls = getattr(errors, name)
        assert issubclass(cls, tm.BatchError)
        assert cls.__module__ == "typedmaps.errors"


def test_codec_error_names_the_action() -> None:
    import construct as cs

    from typedmaps.codec import make_codec

    codec = make_codec(cs.Struct("magic" / cs.Const(b"TM"), "n" / cs.Int16ul))
    with pytest.raises(tm.CodecError) as info:
        codec.decode(b"XX\x01\x00")
    assert info.value.action == "decode"
    assert "cannot decode" in str(info.value)
    with pytest.raises(tm.CodecError) as info:
        codec.encode(cs.Container(n=-1))
    assert info.value.action == "encode"
    assert str(info.value).startswith("value.n: cannot encode -1")
    back = pickle.loads(pickle.dumps(info.value))
    assert (back.path, back.value, back.action, str(back)) == (
        "value.n",
        -1,
        "encode",
        str(info.value),
    )
    with pytest.raises(tm.CodecError) as info:
        make_codec(cs.GreedyBytes)
    assert info.value.action == "use"
