//! The baseline: a plain tokio echo server, written the way a Rust programmer who does
//! not want to think about sockets would write it (multi-threaded runtime, one task
//! per connection, a 4 KiB buffer each).
//!
//! The bench starts it as a separate process, `xtask bench --serve-tokio PORT`, so its
//! memory is measured on its own, like the lab servers'. It serves until it is killed.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes read per read() call on a connection.
const BUFFER_SIZE: usize = 4096;

/// Serves echo on 127.0.0.1:`port` forever.
pub fn serve(port: u16) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    // The accept loop runs as a task on the worker threads, like every `#[tokio::main]`
    // server's spawned work, not on the thread that only waits in block_on().
    runtime.block_on(async move {
        tokio::spawn(accept_forever(port))
            .await
            .context("the accept loop failed")?
    })
}

/// Accepts connections and hands each one to its own task.
async fn accept_forever(port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    println!("listening on 127.0.0.1:{port}");
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                tokio::spawn(echo(stream));
            }
            Err(error) => {
                // Usually EMFILE: out of descriptors. Back off instead of spinning.
                eprintln!("tokio echo server: accept() failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Sends back every byte until the client closes (or the connection fails).
async fn echo(mut stream: TcpStream) {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    loop {
        let received = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(received) => received,
        };
        if stream.write_all(&buffer[..received]).await.is_err() {
            return;
        }
    }
}
