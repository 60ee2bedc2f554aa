"""HTTP and websocket endpoints: thin layers that parse, call the domain and render."""

from starlette.convertors import Convertor, register_url_convertor

from widget_server.numbers import parse_int


class RowId(Convertor[int]):
    """``{name:id}``: a path segment of ASCII digits naming a row. Starlette's ``int`` hands
    any run of digits to ``int()``, which fails (a 500) past 4,300 digits and gives values no
    64-bit column holds; a number beyond 64 bits becomes 0, which names no row, so the
    route answers its own "not found"."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        return parse_int(value) or 0

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", RowId())
