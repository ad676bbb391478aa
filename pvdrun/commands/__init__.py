"""The ``pvdrun`` subcommands, one module each: what a person types, the lines it prints and
its exit statuses (docs/cli.md).  Each is a thin face over a library package: ``observe``
(list, show, monitor) over :mod:`pvdrun.api`, ``resolve`` over :mod:`pvdrun.resolve`,
``daemon`` over :mod:`pvdrun.daemon` and :mod:`pvdrun.routing`, ``lab`` over
:mod:`pvdrun.lab`, ``shim_path`` over :mod:`pvdrun.shim`; ``common`` is what they share.
``pvdrun --pvd`` itself is :mod:`pvdrun.launch`.  Libraries never import these.
"""
