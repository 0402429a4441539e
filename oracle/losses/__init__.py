"""One module per documented loss. Each declares ``SPEC`` (an
:class:`oracle.catalog.LossSpec`), ``evaluate`` (value, term scale and exact VJPs) and
``cases`` (the golden-fixture cases); :mod:`oracle.catalog` discovers them."""
