# The classes every generated module shares: wrappers for nested options
# and for results that are values, and the bases of records and variants.


class _Box:
    """A value in a wrapper: `Some`, `Ok` and `Err`."""

    __slots__ = ("value",)
    __match_args__ = ("value",)

    def __init__(self, value=None):
        self.value = value

    def __eq__(self, other):
        return type(other) is type(self) and self.value == other.value

    def __hash__(self):
        return hash((type(self), self.value))

    def __repr__(self):
        return f"{type(self).__name__}({self.value!r})"


class Some(_Box):
    """`some(value)` of an option whose payload may itself be None."""

    __slots__ = ()


class Ok(_Box):
    """The `ok` case of a result that is a value (not a return)."""

    __slots__ = ()


class Err(_Box):
    """The `err` case of a result that is a value (not a return)."""

    __slots__ = ()


class _Record:
    """Base of WIT records: fields by name, equality by value."""

    __slots__ = ()

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    __hash__ = None

    def __repr__(self):
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"{type(self).__qualname__}({fields})"


class _Variant:
    """Base of WIT variants: one subclass per case (`tag`, `index`), the
    payload in `value`."""

    __slots__ = ("value",)
    __match_args__ = ("value",)
    tag = None
    index = -1
    has_payload = False

    def __init__(self, value=None):
        if value is not None and not self.has_payload:
            raise TypeError(f"{type(self).__qualname__} has no payload")
        self.value = value

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.value == other.value

    def __hash__(self):
        return hash((type(self), self.value))

    def __repr__(self):
        if not self.has_payload:
            return f"{type(self).__qualname__}()"
        return f"{type(self).__qualname__}({self.value!r})"


class _Error(Exception):
    """Base of the exception each interface raises for a returned `err`."""

    def __init__(self, value=None):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return str(self.value)
