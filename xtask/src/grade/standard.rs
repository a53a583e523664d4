//! Standard rows of a check table: the checks several labs share (`ipv6`, `backlog`,
//! `reuse-address`, `port-in-use`, `prints-addresses`, `no-fd-leak`), named once with
//! their points, budget and the line the reports show, so a lab's table names them in
//! one line and says only what differs (its README details, the run function).

use super::check::{Check, Run, secs};
use super::common;

/// A one-point check with the usual budget (20 s).
pub const fn one(
    name: &'static str,
    verifies: &'static str,
    details: &'static str,
    run: Run,
) -> Check {
    Check {
        name,
        points: 1,
        verifies,
        details,
        run,
        budget: secs(20),
    }
}

/// `ipv6`: the program works with `--host ::1`.
pub const fn ipv6(run: Run) -> Check {
    one(
        "ipv6",
        "works over IPv6 with --host ::1",
        "`--host ::1` works",
        run,
    )
}

/// `port-in-use`: a taken TCP port gives one clear line ([`common::port_in_use`]).
pub const fn port_in_use(details: &'static str) -> Check {
    one(
        "port-in-use",
        "one-line error and non-zero exit when the port is taken",
        details,
        common::port_in_use,
    )
}

/// `backlog`: `--backlog N` reaches listen() ([`common::backlog`]).
pub const fn backlog<const N: u32>(details: &'static str) -> Check {
    one(
        "backlog",
        "listen() uses --backlog (read back from the kernel with ss)",
        details,
        common::backlog::<N>,
    )
}

/// `reuse-address`: the server restarts on its port at once (SO_REUSEADDR).
pub const fn reuse_address(details: &'static str, run: Run) -> Check {
    one(
        "reuse-address",
        "restarts on the same port at once (SO_REUSEADDR)",
        details,
        run,
    )
}

/// `prints-addresses`: stdout names the listening port and each client's address.
pub const fn prints_addresses(details: &'static str, run: Run) -> Check {
    one(
        "prints-addresses",
        "prints its port and each client's address:port",
        details,
        run,
    )
}

/// `no-fd-leak`: the server's open descriptors do not grow with clients served.
pub const fn no_fd_leak(details: &'static str, run: Run) -> Check {
    one(
        "no-fd-leak",
        "open file descriptors do not grow with clients served",
        details,
        run,
    )
}

impl Check {
    /// The same check with another README line.
    pub const fn details(mut self, details: &'static str) -> Check {
        self.details = details;
        self
    }

    /// The same check with another report line.
    pub const fn verifies(mut self, verifies: &'static str) -> Check {
        self.verifies = verifies;
        self
    }
}
