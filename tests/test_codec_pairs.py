"""Pair plans (codec.pair_plan): one generated loop over keys and values equals two codecs.

The typed maps decode full reads and encode batch writes with a loop
generated for the key and value schemas together. These properties hold it
to the per-codec path, which tests/test_codec_equivalence.py holds to
construct: same objects (types, attribute order, bits), same bytes, and it
never succeeds where a fast plan would hand over to construct. Per-CPU
lookups use Codec.strided_decoder, held here to decode_strided.
"""

from __future__ import annotations

import construct as cs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_codec_equivalence import SETTINGS, Spec, norm, specs
from typedmaps.codec import make_codec, pair_plan
from typedmaps.errors import CodecError


@SETTINGS
@given(kspec=specs, vspec=specs, data=st.data())
def test_pair_plan_equals_the_two_codecs(kspec: Spec, vspec: Spec, data: st.DataObject) -> None:
    kc, vc = make_codec(kspec.schema, "key"), make_codec(vspec.schema, "value")
    pp = pair_plan(kc, vc)
    if not (kc.fast and vc.fast and kc.size and vc.size):
        assert pp is None
        return
    assert pp is not None
    n = data.draw(st.integers(0, 4))
    keys = [data.draw(kspec.valid) for _ in range(n)]
    values = [data.draw(vspec.valid) for _ in range(n)]
    kb = b"".join(kspec.schema.build(k) for k in keys)
    vb = b"".join(vspec.schema.build(v) for v in values)

    got_kb, got_vb = pp.encode_pairs(list(zip(keys, values, strict=True)))
    assert (bytes(got_kb), bytes(got_vb)) == (kb, vb)

    try:  # (records construct cannot parse: a frozen one with init=False fields)
        expected = list(zip(kc.decode_many(kb, n), vc.decode_many(vb, n), strict=True))
    except CodecError:
        with pytest.raises(Exception):  # noqa: B017, PT011 (then the caller asks the codecs)
            pp.decode_pairs(kb, memoryview(vb))
    else:
        pairs = pp.decode_pairs(kb, memoryview(vb))
        assert [(norm(k), norm(v)) for k, v in pairs] == [(norm(k), norm(v)) for k, v in expected]

    # Random bytes: the pair loop either raises (the caller then asks the
    # codecs, which ask construct) or gives what the codecs give.
    kraw = data.draw(st.binary(min_size=kc.size * n, max_size=kc.size * n))
    vraw = data.draw(st.binary(min_size=vc.size * n, max_size=vc.size * n))
    try:
        pairs = pp.decode_pairs(kraw, vraw)
    except Exception:
        return
    ks = [norm(k) for k in kc.decode_many(kraw, n)]
    vs = [norm(v) for v in vc.decode_many(vraw, n)]
    assert [(norm(k), norm(v)) for k, v in pairs] == list(zip(ks, vs, strict=True))


@SETTINGS
@given(kspec=specs, vspec=specs, data=st.data())
def test_encode_pairs_never_succeeds_where_a_codec_fails(
    kspec: Spec, vspec: Spec, data: st.DataObject
) -> None:
    kc, vc = make_codec(kspec.schema, "key"), make_codec(vspec.schema, "value")
    pp = pair_plan(kc, vc)
    if pp is None:
        return
    items = [(data.draw(kspec.anything), data.draw(vspec.anything)) for _ in range(2)]
    try:
        got_kb, got_vb = pp.encode_pairs(items)
    except Exception:
        return
    assert bytes(got_kb) == b"".join(kc.encode(k) for k, _ in items)
    assert bytes(got_vb) == b"".join(vc.encode(v) for _, v in items)


def test_no_pair_plan_without_two_fast_plans() -> None:
    fast = make_codec(cs.Int32ul, "key")
    slow = make_codec(cs.Struct("x" / cs.Computed(1), "y" / cs.Int8ul))
    assert fast.fast
    assert not slow.fast
    assert pair_plan(fast, make_codec(cs.Int64ul)) is not None
    assert pair_plan(fast, slow) is None
    assert pair_plan(slow, fast) is None


@SETTINGS
@given(spec=specs, data=st.data())
def test_strided_decoder_equals_decode_strided(spec: Spec, data: st.DataObject) -> None:
    codec = make_codec(spec.schema)
    count = data.draw(st.integers(0, 3))
    stride = data.draw(st.sampled_from([codec.size, (codec.size + 7) // 8 * 8, codec.size + 3]))
    decode = codec.strided_decoder(count, stride)
    raw = data.draw(st.binary(min_size=count * stride, max_size=count * stride))
    want: object
    try:
        want = [norm(x) for x in codec.decode_strided(raw, count, stride)]
    except CodecError as exc:
        want = (exc.path, exc.reason)
    if isinstance(want, list):
        assert [norm(x) for x in decode(raw)] == want
    else:
        with pytest.raises(CodecError) as info:
            decode(raw)
        assert (info.value.path, info.value.reason) == want
