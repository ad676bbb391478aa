"""pvdd's route isolation (R7, R23): per-PvD routing tables, rules, socket marks, policy.

* :mod:`pvdrun.routing.plan`: which tables, rules and marks the PvD table asks for (pure);
* :mod:`pvdrun.routing.netlink`: install them with rtnetlink, tagged ``proto 153``, and remove
  exactly those (also what a crashed pvdd left);
* :mod:`pvdrun.routing.firewall`: pvdd's nftables table (restricted PvDs, parked marks);
* :mod:`pvdrun.routing.nested`: addresses and routes from nested PvD options;
* :mod:`pvdrun.routing.lifecycle`: all of it over pvdd's life: start (take over), sync, stop (park);
* :mod:`pvdrun.routing.cleanup`: ``pvdrun daemon --cleanup``;
* :mod:`pvdrun.routing.policy`: who may use which PvD (SO_PEERCRED, /proc/PID/status);
* :mod:`pvdrun.routing.marking`: marking a socket a client passed (SCM_RIGHTS) for a PvD.

See docs/routing.md and docs/security.md.
"""
