"""``pvdrun verify``: run a program in one PvD and report where its sockets, lookups and
packets went (docs/cli.md, "verify").

* :mod:`pvdrun.verify.trace` reads the shim's trace (``PVDRUN_TRACE``): every socket the shim
  tied or refused, every lookup it made;
* :mod:`pvdrun.verify.nftwatch` writes and reads the nftables table that counts, by cgroup,
  every packet the program's process tree sends, per link and 5-tuple;
* :mod:`pvdrun.verify.linkwatch` makes the cgroup and the table, moves a process in, and
  removes both (in this process as root, or in pvdd for a user: pvdrun/daemon/watches.py);
* :mod:`pvdrun.verify.report` turns both into the verdict and the report;
* :mod:`pvdrun.verify_core` (above the launcher, whose launch it splits) runs the program
  between them, and :mod:`pvdrun.verify_command` is the click face.
"""
