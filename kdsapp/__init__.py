"""The applications: the `kds` command line, the demo and the order simulator. They compose the hub (`kds`), the
screens (`terminals`) and the printers (`printers`); nothing imports them."""
