//! `faultproxy`: forwards TCP connections from a loopback port to a
//! dependency (Redis, PostgreSQL) and, while a fault is set, degrades the
//! path the way a bad network would: every chunk of data waits `latency`
//! in each direction, and a chunk "lost" (with probability `loss`) waits a
//! retransmission timeout on top, holding back everything behind it, as
//! TCP's in-order delivery does after a dropped segment.
//!
//! The chaos suite uses it where the kernel has no `netem` queueing
//! discipline (containers and sandboxes often lack it); where it has one,
//! `tc qdisc … netem` on the namespace's interface is the same fault.
//!
//! The fault is read from a file (`--faults`), polled every 200 ms, so a
//! script sets and clears it with one `echo`:
//!
//! ```text
//! latency_ms=200 loss=0.05     # 200 ms each way, 5 % of chunks retransmitted
//! down                         # refuse new connections, cut the open ones
//! (empty or missing)           # a clean path
//! ```
//!
//! Only loopback addresses are accepted, on either side.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

#[derive(Debug, Parser)]
#[command(
    name = "faultproxy",
    about = "A TCP proxy with latency and loss, for chaos tests"
)]
struct Args {
    /// Where to listen (loopback).
    #[arg(long)]
    listen: SocketAddr,
    /// Where to forward (loopback).
    #[arg(long)]
    upstream: SocketAddr,
    /// The file holding the current fault (see the module documentation).
    #[arg(long)]
    faults: PathBuf,
}

/// Linux's minimum retransmission timeout: the least a lost segment costs.
const RETRANSMISSION_TIMEOUT: Duration = Duration::from_millis(200);
/// Chunks in flight per direction of one connection; a full pipe stops
/// reading, so memory stays bounded under any load.
const CHUNKS_IN_FLIGHT: usize = 256;
const CHUNK_BYTES: usize = 16 * 1024;

/// The state of the path, as the faults file says.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Fault {
    latency: Duration,
    loss: f64,
    down: bool,
}

impl Fault {
    fn parse(text: &str) -> anyhow::Result<Fault> {
        let mut fault = Fault::default();
        for word in text.split_whitespace() {
            match word.split_once('=') {
                None if word == "down" => fault.down = true,
                Some(("latency_ms", value)) => {
                    fault.latency = Duration::from_millis(value.parse().context("latency_ms")?)
                }
                Some(("loss", value)) => {
                    fault.loss = value.parse().context("loss")?;
                    if !(0.0..1.0).contains(&fault.loss) {
                        bail!("loss must be in [0, 1)");
                    }
                }
                _ => bail!("unknown fault setting {word:?}"),
            }
        }
        Ok(fault)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() || !args.upstream.ip().is_loopback() {
        bail!("faultproxy only proxies between loopback addresses");
    }
    let (faults, current) = watch::channel(Fault::default());
    tokio::spawn(watch_faults(args.faults.clone(), faults));
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    eprintln!("faultproxy {} -> {}", args.listen, args.upstream);
    loop {
        let (client, _) = listener.accept().await?;
        if current.borrow().down {
            drop(client);
            continue;
        }
        let upstream = args.upstream;
        let current = current.clone();
        tokio::spawn(async move {
            if let Err(error) = proxy(client, upstream, current).await {
                eprintln!("connection ended: {error}");
            }
        });
    }
}

/// Follows the faults file; a file that does not parse keeps the last fault.
async fn watch_faults(path: PathBuf, faults: watch::Sender<Fault>) {
    let mut last_text = None;
    loop {
        let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
        if last_text.as_ref() != Some(&text) {
            match Fault::parse(&text) {
                Ok(fault) => {
                    eprintln!("fault now {fault:?}");
                    faults.send_replace(fault);
                }
                Err(error) => eprintln!("{}: {error:#}", path.display()),
            }
            last_text = Some(text);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn proxy(
    client: TcpStream,
    upstream: SocketAddr,
    current: watch::Receiver<Fault>,
) -> anyhow::Result<()> {
    let server = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream))
        .await
        .context("connect timed out")??;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut down = current.clone();
    let forward = async {
        tokio::try_join!(
            pipe(client_read, server_write, current.clone()),
            pipe(server_read, client_write, current.clone()),
        )
    };
    tokio::select! {
        result = forward => result.map(|_| ()),
        // `down` cuts open connections too, as a dead host would.
        _ = down.wait_for(|fault| fault.down) => Ok(()),
    }
}

/// One direction: read chunks, stamp each with the time it may leave, and
/// write them out in order no earlier than that.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    current: watch::Receiver<Fault>,
) -> anyhow::Result<()> {
    let (chunks, mut ready) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_IN_FLIGHT);
    let reader = async move {
        let mut released = Instant::now();
        loop {
            let mut buffer = vec![0; CHUNK_BYTES];
            let read = from.read(&mut buffer).await?;
            if read == 0 {
                return anyhow::Ok(());
            }
            buffer.truncate(read);
            let fault = *current.borrow();
            let mut delay = fault.latency;
            if fault.loss > 0.0 && rand::thread_rng().gen_bool(fault.loss) {
                delay += RETRANSMISSION_TIMEOUT.max(fault.latency * 2);
            }
            // In order: nothing overtakes a chunk held back before it.
            released = released.max(Instant::now() + delay);
            if chunks.send((released, buffer)).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = ready.recv().await {
            tokio::time::sleep_until(at).await;
            to.write_all(&chunk).await?;
        }
        to.shutdown().await?;
        anyhow::Ok(())
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_one_line() {
        assert_eq!(Fault::parse("").unwrap(), Fault::default());
        let fault = Fault::parse("latency_ms=200 loss=0.05\n").unwrap();
        assert_eq!(fault.latency, Duration::from_millis(200));
        assert_eq!(fault.loss, 0.05);
        assert!(!fault.down);
        assert!(Fault::parse("down").unwrap().down);
        assert!(Fault::parse("loss=1.5").is_err());
        assert!(Fault::parse("jitter=3").is_err());
    }
}
