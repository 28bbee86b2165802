//! SIP transports for the user agent: one UDP socket, a TCP listener with one task per
//! connection (framed by `Content-Length`), and outgoing TCP connections opened on
//! demand. Everything received is handed to the core as [`Inbound`] values on one
//! channel, so the core stays a single owner of all state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::config::SipConfig;
use crate::message::{Limits, frame_len};
use crate::transaction::{Peer, Transport};

/// What the transports hand to the core.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A complete message from a TCP connection.
    Frame { bytes: Vec<u8>, peer: Peer },
    /// A TCP connection is up; messages for `addr` go to the sender.
    Up {
        addr: SocketAddr,
        tx: mpsc::UnboundedSender<Vec<u8>>,
    },
    /// A TCP connection closed.
    Down { addr: SocketAddr },
}

/// The transports.
pub(crate) struct Net {
    pub(crate) udp: Arc<UdpSocket>,
    /// The same socket for sending: a non-blocking std send never waits for tokio's
    /// write readiness (which `try_send_to` needs and the core never polls).
    udp_send: std::net::UdpSocket,
    tcp_addr: Option<SocketAddr>,
    listener: Option<TcpListener>,
    conns: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    pub(crate) inbound_tx: mpsc::UnboundedSender<Inbound>,
    pub(crate) inbound_rx: Option<mpsc::UnboundedReceiver<Inbound>>,
}

impl Net {
    /// Binds UDP (and TCP when configured) on the configured address; TCP takes the
    /// port UDP got when the configured port is 0 (SIP announces one port for both).
    pub(crate) async fn bind(cfg: &SipConfig) -> std::io::Result<Self> {
        // An ephemeral UDP port can be taken on TCP by someone else: then try another one.
        const EPHEMERAL_TRIES: u32 = 16;
        let mut tries = 0;
        let (std_udp, listener) = loop {
            let std_udp = std::net::UdpSocket::bind(cfg.listen)?;
            if !cfg.transports.contains(&Transport::Tcp) {
                break (std_udp, None);
            }
            let udp_addr = std_udp.local_addr()?;
            match TcpListener::bind(udp_addr).await {
                Ok(l) => break (std_udp, Some(l)),
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && cfg.listen.port() == 0
                        && tries < EPHEMERAL_TRIES =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        };
        std_udp.set_nonblocking(true)?;
        let udp_send = std_udp.try_clone()?;
        let udp = UdpSocket::from_std(std_udp)?;
        let tcp_addr = listener.as_ref().map(TcpListener::local_addr).transpose()?;
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        Ok(Self {
            udp: Arc::new(udp),
            udp_send,
            tcp_addr,
            listener,
            conns: HashMap::new(),
            inbound_tx,
            inbound_rx: Some(inbound_rx),
        })
    }

    pub(crate) fn udp_addr(&self) -> SocketAddr {
        self.udp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Starts accepting TCP connections.
    pub(crate) fn spawn_listener(&mut self, limits: Limits) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let tx = self.inbound_tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, addr)) => spawn_conn(stream, addr, tx.clone(), limits),
                    Err(e) => {
                        warn!(error = %e, "TCP accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
                if tx.is_closed() {
                    break;
                }
            }
        });
    }

    /// Records a connection the core heard about.
    pub(crate) fn conn_up(&mut self, addr: SocketAddr, tx: mpsc::UnboundedSender<Vec<u8>>) {
        self.conns.insert(addr, tx);
    }

    /// Forgets a closed connection.
    pub(crate) fn conn_down(&mut self, addr: SocketAddr) {
        self.conns.remove(&addr);
    }

    /// Sends a message. UDP sends never wait (a full buffer drops the datagram:
    /// retransmissions cover it); TCP opens a connection when there is none.
    pub(crate) fn send(&mut self, peer: Peer, bytes: Vec<u8>, limits: Limits) {
        match peer.transport {
            Transport::Udp => {
                if let Err(e) = self.udp_send.send_to(&bytes, peer.addr) {
                    debug!(error = %e, to = %peer.addr, "UDP send failed");
                }
            }
            Transport::Tcp => {
                if let Some(tx) = self.conns.get(&peer.addr)
                    && tx.send(bytes.clone()).is_ok()
                {
                    return;
                }
                let (tx, rx) = mpsc::unbounded_channel();
                let _ = tx.send(bytes);
                self.conns.insert(peer.addr, tx.clone());
                let inbound = self.inbound_tx.clone();
                tokio::spawn(async move {
                    match TcpStream::connect(peer.addr).await {
                        Ok(s) => run_conn(s, peer.addr, inbound, limits, tx, rx).await,
                        Err(e) => {
                            warn!(error = %e, to = %peer.addr, "TCP connect failed");
                            let _ = inbound.send(Inbound::Down { addr: peer.addr });
                        }
                    }
                });
            }
        }
    }
}

fn spawn_conn(
    stream: TcpStream,
    addr: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
    limits: Limits,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run_conn(stream, addr, inbound, limits, tx, rx));
}

async fn run_conn(
    stream: TcpStream,
    addr: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
    limits: Limits,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let _ = inbound.send(Inbound::Up { addr, tx });
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    let peer = Peer {
        addr,
        transport: Transport::Tcp,
    };
    'conn: loop {
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        loop {
            match frame_len(&buf, &limits) {
                Ok(Some(len)) => {
                    let msg: Vec<u8> = buf.drain(..len).collect();
                    if msg.iter().any(|b| !b.is_ascii_whitespace())
                        && inbound.send(Inbound::Frame { bytes: msg, peer }).is_err()
                    {
                        break 'conn;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // A stream cannot resynchronise after a framing error: close it.
                    debug!(error = %e, from = %addr, "bad TCP framing; closing");
                    break 'conn;
                }
            }
        }
    }
    writer.abort();
    let _ = inbound.send(Inbound::Down { addr });
}
