//! Standard rows of a check table: the checks several labs share (`ipv6`, `backlog`,
//! `reuse-address`, `port-in-use`, `prints-addresses`, `no-fd-leak`), named once with
//! their points, budget and the line the reports show, so a lab's table names them in
//! one short line. The lab's words file (`xtask/checks/LAB.toml`) gives each its README
//! line, and may reword the report line where the lab's check does more.

use super::check::{Row, Run, row};
use super::common;

/// A standard row: one point, 20 s, a report line every lab shares.
const fn standard(name: &'static str, verifies: &'static str, run: Run) -> Row {
    let mut row = row(name, run);
    row.verifies = verifies;
    row
}

/// `ipv6`: the program works with `--host ::1`.
pub const fn ipv6(run: Run) -> Row {
    let mut row = standard("ipv6", "works over IPv6 with --host ::1", run);
    row.details = "`--host ::1` works";
    row
}

/// `port-in-use`: a taken TCP port gives one clear line ([`common::port_in_use`]).
pub const fn port_in_use() -> Row {
    standard(
        "port-in-use",
        "one-line error and non-zero exit when the port is taken",
        common::port_in_use,
    )
}

/// `backlog`: `--backlog N` reaches listen() ([`common::backlog`]).
pub const fn backlog<const N: u32>() -> Row {
    standard(
        "backlog",
        "listen() uses --backlog (read back from the kernel)",
        common::backlog::<N>,
    )
}

/// `reuse-address`: the server restarts on its port at once (SO_REUSEADDR).
pub const fn reuse_address(run: Run) -> Row {
    standard(
        "reuse-address",
        "restarts on the same port at once (SO_REUSEADDR)",
        run,
    )
}

/// `prints-addresses`: stdout names the listening port and each client's address.
pub const fn prints_addresses(run: Run) -> Row {
    standard(
        "prints-addresses",
        "prints its port and each client's address:port",
        run,
    )
}

/// `no-fd-leak`: the server's open descriptors do not grow with clients served.
pub const fn no_fd_leak(run: Run) -> Row {
    standard(
        "no-fd-leak",
        "open file descriptors do not grow with clients served",
        run,
    )
}
