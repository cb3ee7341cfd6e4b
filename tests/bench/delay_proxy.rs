//! A userspace TCP delay proxy for the benches (this machine's kernel has no `tc netem`): every
//! byte is forwarded DELAY_MS/2 later in each direction, so a connection through it sees DELAY_MS
//! of round-trip time without its throughput being limited. Order is kept per direction; each
//! chunk waits only for its own time. One thread: on a 2-core machine its CPU is taken from the
//! server and keytrail it sits between, so it is kept small (the Python proxy it replaced took
//! ~23 CPU-seconds of a bench run).
//!
//! `cargo run --release --example delay_proxy -- LISTEN_PORT UPSTREAM_HOST:PORT DELAY_MS`

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, upstream, delay_ms] = args.as_slice() else {
        eprintln!("usage: delay_proxy LISTEN_PORT UPSTREAM_HOST:PORT DELAY_MS");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("LISTEN_PORT is a port number");
    let delay_ms: u64 = delay_ms.parse().expect("DELAY_MS is a whole number");
    let one_way = Duration::from_micros(delay_ms * 500);
    let upstream = upstream.clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(("127.0.0.1", port)).await?;
            loop {
                let (client, _) = listener.accept().await?;
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (client_r, client_w) = client.into_split();
                    let (server_r, server_w) = server.into_split();
                    tokio::join!(
                        pipe(client_r, server_w, one_way),
                        pipe(server_r, client_w, one_way)
                    );
                });
            }
        })
}

/// Forwards what `from` reads to `to`, each chunk `one_way` after it was read; then ends `to`'s
/// side of the connection.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, one_way: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if tx
                .send((Instant::now() + one_way, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    };
    let write = async move {
        while let Some((at, data)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
