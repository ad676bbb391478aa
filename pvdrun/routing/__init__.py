"""pvdd's route isolation (R7, R23): per-PvD routing tables, rules, socket marks, policy.

* :mod:`pvdrun.routing.plan`: which tables, rules and marks the PvD table asks for (pure);
* :mod:`pvdrun.routing.netlink`: install them with rtnetlink, tagged ``proto 153``, and remove
  exactly those (also what a crashed pvdd left);
* :mod:`pvdrun.routing.policy`: who may use which PvD (SO_PEERCRED, /proc/PID/status);
* :mod:`pvdrun.routing.marking`: pvdd's ``mark`` request (a socket passed with SCM_RIGHTS).

See docs/routing.md and docs/security.md.
"""
