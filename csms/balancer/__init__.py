"""Feeder load balancing.

``topology`` (the feeder tree) and ``allocate`` (the pure allocation) are standard
library only and free of I/O; the async service around them lives beside them.
Import from the submodules (``from csms.balancer.allocate import allocate``): the
package re-exports nothing, so ``csms.balancer.allocate`` is always the module.
"""
