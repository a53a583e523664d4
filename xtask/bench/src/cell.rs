//! One cell of the table: one fresh server, one connection count, one measuring window.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::{Generator, LoadPlan};
use super::report::Row;
use super::server::{MemorySampler, RunningServer, ServerKind, free_port};
use super::stats::summarize;

/// Deadline of one connection attempt. A server whose accept queue is full drops the
/// SYN, and the client's kernel would retry for minutes without it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What every cell shares, from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub connections: Vec<usize>,
    pub servers: Vec<ServerKind>,
    pub duration: Duration,
    pub max_messages: Option<u64>,
    pub message_size: usize,
    pub connect_concurrency: usize,
    pub client_threads: usize,
    pub out: PathBuf,
}

impl Settings {
    /// The settings as lines for the top of `bench.md`.
    pub fn describe(&self) -> Vec<String> {
        let servers: Vec<&str> = self.servers.iter().map(|kind| kind.name()).collect();
        let mut lines = vec![
            format!("servers: {}", servers.join(", ")),
            format!(
                "measuring window: {:.1} s per cell{}",
                self.duration.as_secs_f64(),
                match self.max_messages {
                    Some(count) => format!(", or {count} round trips"),
                    None => String::new(),
                }
            ),
            format!(
                "message: {} bytes; each connection sends one, waits for the whole echo, repeats",
                self.message_size
            ),
            format!(
                "load generator: tokio, {} thread(s), {} connects in flight at most, {} s per connect",
                self.client_threads,
                self.connect_concurrency,
                CONNECT_TIMEOUT.as_secs()
            ),
        ];
        lines.push(
            "open: connections established before the measuring window; served: \
             connections that completed at least one round trip in it; MB/s counts the \
             echoed payload once (10^6 bytes); peak RSS is the server's VmHWM; \
             KiB/conn = (VmRSS under load - VmRSS idle) / open connections"
                .into(),
        );
        lines
    }
}

/// A measured cell and what is worth saying about it.
pub struct Measured {
    pub row: Row,
    pub notes: Vec<String>,
}

/// How long opening `connections` connections may take in all.
fn opening_timeout(connections: usize) -> Duration {
    Duration::from_secs(5) + Duration::from_millis(connections as u64)
}

/// Starts `kind` fresh, loads it with `connections` connections, and stops it.
pub fn measure(
    kind: ServerKind,
    program: &Path,
    connections: usize,
    settings: &Settings,
) -> anyhow::Result<Measured> {
    let name = kind.name();
    print!("{name} × {connections}: ");
    let _ = std::io::stdout().flush();

    let port = free_port()?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let log = settings
        .out
        .join("logs")
        .join(format!("{name}-{connections}.log"));
    let command = kind.command(program, port, connections);
    // Dropping `server` (also on every early return below) kills its process group.
    let mut server = RunningServer::start(command, address, &log)?;
    let idle_kib = server.memory().and_then(|memory| memory.rss_kib);

    let generator = Generator::new(LoadPlan {
        address,
        connections,
        message_size: settings.message_size,
        duration: settings.duration,
        max_messages: settings.max_messages,
        connect_concurrency: settings.connect_concurrency,
        connect_timeout: CONNECT_TIMEOUT,
        opening_timeout: opening_timeout(connections),
        threads: settings.client_threads,
    })?;
    let open = generator.open();
    let opened = open.count();
    print!("{opened} open in {:.2} s, ", open.elapsed.as_secs_f64());
    let _ = std::io::stdout().flush();
    let mut notes = Vec::new();
    if opened < connections {
        let mut note = format!(
            "{name} × {connections}: only {opened} connections opened ({} failed",
            open.failed
        );
        if let Some(error) = &open.first_error {
            note.push_str(&format!(", first: {error}"));
        }
        if open.not_attempted > 0 {
            note.push_str(&format!(
                "; {} not tried before the {:.0} s opening deadline",
                open.not_attempted,
                opening_timeout(connections).as_secs_f64()
            ));
        }
        note.push(')');
        notes.push(note);
    }

    let sampler = MemorySampler::start(server.pid());
    let mut exchange = generator.exchange(open);
    let loaded_kib = sampler.finish();
    let end_memory = server.memory().unwrap_or_default();
    if let Some(status) = server.exit_status() {
        notes.push(format!(
            "{name} × {connections}: the server exited during the run ({status}); {}",
            server.log_tail()
        ));
    }
    drop(server);

    let round_trips = exchange.latencies_ns.len();
    let summary = summarize(
        &mut exchange.latencies_ns,
        settings.message_size,
        exchange.elapsed,
    );
    println!(
        "{round_trips} round trips in {:.2} s, {} connections served",
        exchange.elapsed.as_secs_f64(),
        exchange.served
    );
    if exchange.failed > 0 {
        notes.push(format!(
            "{name} × {connections}: {} connections failed while measuring (first: {})",
            exchange.failed,
            exchange.first_error.as_deref().unwrap_or("unknown")
        ));
    }
    if exchange.served < opened && exchange.failed == 0 {
        notes.push(format!(
            "{name} × {connections}: {} of {opened} open connections got no echo within the window",
            opened - exchange.served
        ));
    }
    let kib_per_connection = match (idle_kib, loaded_kib) {
        (Some(idle), Some(loaded)) if opened > 0 => {
            Some((loaded as f64 - idle as f64) / opened as f64)
        }
        _ => None,
    };
    Ok(Measured {
        row: Row {
            server: name.to_string(),
            connections,
            opened,
            served: exchange.served,
            summary,
            peak_rss_mib: end_memory.hwm_kib.map(|kib| kib as f64 / 1024.0),
            kib_per_connection,
        },
        notes,
    })
}
