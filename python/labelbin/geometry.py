"""World-unit geometry with funlib.geometry's semantics: Coordinate and Roi.

Kept identical to funlib.geometry v0.3 (docs/semantics.md §1) so code written
against funlib runs unchanged: ``/`` truncates toward zero, ``//`` floors,
``None`` entries mean "unbounded" and propagate, snapping uses floor division
so negative coordinates are right.
"""

import numbers
from collections.abc import Iterable

__all__ = ["Coordinate", "Roi"]


def _int(x):
    return None if x is None else int(x)


def _trunc_div(a, b):
    """a / b truncated toward zero; exact for ints (funlib: int(a / b))."""
    if isinstance(a, numbers.Integral) and isinstance(b, numbers.Integral):
        a, b = int(a), int(b)
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    return int(a / b)


class Coordinate(tuple):
    """A tuple of ints (or None) with elementwise arithmetic.

    ``Coordinate((1, 2))``, ``Coordinate([1, 2])`` and ``Coordinate(1, 2)`` are
    the same; floats are truncated toward zero by ``int()``.
    """

    def __new__(cls, *array_like):
        if len(array_like) == 1 and isinstance(array_like[0], Iterable):
            array_like = array_like[0]
        return super().__new__(cls, [_int(x) for x in array_like])

    @property
    def dims(self):
        return len(self)

    def squeeze(self, dim=0):
        return Coordinate(self[:dim] + self[dim + 1:])

    def is_multiple_of(self, coordinate):
        assert self.dims == len(coordinate), \
            "can only check multiples of Coordinates of equal dimensions"
        return all(a % b == 0 for a, b in zip(self, coordinate) if a is not None)

    def round_division(self, other):
        other = self._other(other)
        return Coordinate(None if a is None else (a + (b - 1) // 2) // b
                          for a, b in zip(self, other))

    def floor_division(self, other):
        return self // other

    def ceil_division(self, other):
        other = self._other(other)
        return Coordinate(None if a is None else -((-a) // b) for a, b in zip(self, other))

    def _other(self, other, what="combine"):
        if isinstance(other, tuple):
            assert self.dims == len(other), \
                "can only %s Coordinate of equal dimensions" % what
            return other
        if isinstance(other, numbers.Number):
            return (other,) * self.dims
        raise TypeError("%s of Coordinate with type %s not supported"
                        % (what, type(other).__name__))

    def _op(self, other, fn, what):
        other = self._other(other, what)
        return Coordinate(None if a is None or b is None else fn(a, b)
                          for a, b in zip(self, other))

    def __neg__(self):
        return Coordinate(None if a is None else -a for a in self)

    def __pos__(self):
        return self

    def __abs__(self):
        return Coordinate(None if a is None else abs(a) for a in self)

    def __add__(self, other):
        return self._op(other, lambda a, b: a + b, "add")

    def __radd__(self, other):
        return self._op(other, lambda a, b: b + a, "add")

    def __sub__(self, other):
        return self._op(other, lambda a, b: a - b, "subtract")

    def __rsub__(self, other):
        return self._op(other, lambda a, b: b - a, "subtract")

    def __mul__(self, other):
        return self._op(other, lambda a, b: a * b, "multiply")

    def __rmul__(self, other):
        return self._op(other, lambda a, b: b * a, "multiply")

    def __truediv__(self, other):
        return self._op(other, _trunc_div, "divide")

    def __rtruediv__(self, other):
        return self._op(other, lambda a, b: _trunc_div(b, a), "divide")

    __div__ = __truediv__

    def __floordiv__(self, other):
        return self._op(other, lambda a, b: a // b, "divide")

    def __rfloordiv__(self, other):
        return self._op(other, lambda a, b: b // a, "divide")

    def __mod__(self, other):
        return self._op(other, lambda a, b: a % b, "take the modulo of")

    def __rmod__(self, other):
        return self._op(other, lambda a, b: b % a, "take the modulo of")

    def __pow__(self, other):
        return self._op(other, lambda a, b: a ** b, "exponentiate")

    def __eq__(self, other):
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        return tuple.__ne__(self, other)

    __hash__ = tuple.__hash__

    def __repr__(self):
        return tuple.__repr__(self)


def _max(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _min(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class Roi:
    """A region of interest: ``offset`` + ``shape`` in world units.

    ``end = offset + shape``. A shape entry ``None`` makes the axis unbounded
    (and its offset ``None``). The repr is funlib's ``[b0:e0, …] (s0, …)``.
    """

    __slots__ = ("_offset", "_shape")

    def __init__(self, offset, shape):
        offset = Coordinate(offset)
        shape = Coordinate(shape)
        assert offset.dims == shape.dims, \
            "offset dimension %d != shape dimension %d" % (offset.dims, shape.dims)
        self._offset = Coordinate(None if s is None else o for o, s in zip(offset, shape))
        self._shape = shape

    # -- accessors (funlib also has get_* forms) --
    @property
    def offset(self):
        return self._offset

    @property
    def shape(self):
        return self._shape

    @property
    def begin(self):
        return self._offset

    @property
    def end(self):
        return self._offset + self._shape

    @property
    def dims(self):
        return self._shape.dims

    @property
    def empty(self):
        return any(s <= 0 for s in self._shape if s is not None)

    @property
    def unbounded(self):
        return None in self._shape

    @property
    def center(self):
        return self._offset + self._shape / 2

    def get_offset(self):
        return self.offset

    def get_shape(self):
        return self.shape

    def get_begin(self):
        return self.begin

    def get_end(self):
        return self.end

    def get_center(self):
        return self.center

    def size(self):
        if self.unbounded:
            return None
        n = 1
        for s in self._shape:
            n *= s
        return n

    def set_offset(self, offset):
        return Roi(offset, self._shape)

    def set_shape(self, shape):
        return Roi(self._offset, shape)

    def copy(self):
        return Roi(self._offset, self._shape)

    def to_slices(self):
        slices = []
        for o, s in zip(self._offset, self._shape):
            if s is None:
                slices.append(slice(None))
            elif o is None:
                slices.append(slice(None, 0))
            else:
                slices.append(slice(int(o), int(o + s)))
        return tuple(slices)

    get_bounding_box = to_slices

    # -- queries --
    def contains(self, other):
        if isinstance(other, Roi):
            assert self.dims == other.dims, "can only compare ROIs of equal dimensions"
            if other.empty:
                return self.empty or self.contains(other.begin)
            return self.contains(other.begin) and self.contains(other.end - 1)
        point = Coordinate(other)
        assert self.dims == len(point), "point and ROI have different dimensions"
        for p, b, e in zip(point, self.begin, self.end):
            if b is not None and (p is None or p < b):
                return False
            if e is not None and (p is None or p >= e):
                return False
        return True

    def intersects(self, other):
        assert self.dims == other.dims, "can only intersect ROIs of equal dimensions"
        if self.empty or other.empty:
            return False
        for sb, se, ob, oe in zip(self.begin, self.end, other.begin, other.end):
            if (oe is not None and sb is not None and oe <= sb) or \
                    (ob is not None and se is not None and ob >= se):
                return False
        return True

    def intersect(self, other):
        if not self.intersects(other):
            return Roi((None,) * self.dims, (0,) * self.dims)
        begin = Coordinate(_max(a, b) for a, b in zip(self.begin, other.begin))
        end = Coordinate(_min(a, b) for a, b in zip(self.end, other.end))
        shape = Coordinate(None if e is None or b is None else e - b
                           for b, e in zip(begin, end))
        return Roi(begin, shape)

    def union(self, other):
        if self.empty:
            return other
        if other.empty:
            return self
        begin = Coordinate(None if a is None or b is None else min(a, b)
                           for a, b in zip(self.begin, other.begin))
        end = Coordinate(None if a is None or b is None else max(a, b)
                         for a, b in zip(self.end, other.end))
        shape = Coordinate(None if e is None or b is None else e - b
                           for b, e in zip(begin, end))
        return Roi(begin, shape)

    # -- transforms --
    def shift(self, by):
        return Roi(self._offset + by, self._shape)

    def grow(self, amount_neg=0, amount_pos=0):
        if amount_neg is None:
            amount_neg = 0
        if amount_pos is None:
            amount_pos = 0
        if isinstance(amount_neg, numbers.Number):
            amount_neg = Coordinate((amount_neg,) * self.dims)
        if isinstance(amount_pos, numbers.Number):
            amount_pos = Coordinate((amount_pos,) * self.dims)
        amount_neg = Coordinate(amount_neg)
        amount_pos = Coordinate(amount_pos)
        offset = self._offset - amount_neg
        shape = self._shape + amount_neg + amount_pos
        return Roi(offset, shape)

    def snap_to_grid(self, voxel_size, mode="grow"):
        if isinstance(voxel_size, numbers.Number):
            voxel_size = (voxel_size,) * self.dims
        voxel_size = Coordinate(voxel_size)
        assert self.dims == voxel_size.dims, "dimension of voxel size does not match ROI"
        assert 0 not in voxel_size, "Voxel size cannot contain zero"
        if mode == "closest":
            begin = self.begin.round_division(voxel_size)
            end = self.end.round_division(voxel_size)
        elif mode == "grow":
            begin = self.begin.floor_division(voxel_size)
            end = self.end.ceil_division(voxel_size)
        elif mode == "shrink":
            begin = self.begin.ceil_division(voxel_size)
            end = self.end.floor_division(voxel_size)
        else:
            raise RuntimeError("Unknown mode %s for snap_to_grid" % mode)
        return Roi(begin * voxel_size, (end - begin) * voxel_size)

    def squeeze(self, dim=0):
        return Roi(self._offset.squeeze(dim), self._shape.squeeze(dim))

    # -- arithmetic: + and - shift; * / // % scale offset and shape --
    def __add__(self, other):
        return self.shift(other)

    def __sub__(self, other):
        return self.shift(-Coordinate(other) if isinstance(other, tuple) else -other)

    def __mul__(self, other):
        return Roi(self._offset * other, self._shape * other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        return Roi(self._offset / other, self._shape / other)

    __div__ = __truediv__

    def __floordiv__(self, other):
        return Roi(self._offset // other, self._shape // other)

    def __mod__(self, other):
        return Roi(self._offset % other, self._shape % other)

    def __eq__(self, other):
        if isinstance(other, Roi):
            return self._offset == other._offset and self._shape == other._shape
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash((self._offset, self._shape))

    def __reduce__(self):
        return (Roi, (tuple(self._offset), tuple(self._shape)))

    def __repr__(self):
        if self.empty:
            return "[empty ROI]"
        slices = ", ".join("%s:%s" % ("" if b is None else b, "" if e is None else e)
                           for b, e in zip(self.begin, self.end))
        dims = ", ".join("inf" if s is None else str(s) for s in self._shape)
        return "[" + slices + "] (" + dims + ")"

    __str__ = __repr__
