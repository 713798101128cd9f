//! A TCP proxy on `127.0.0.1:0` in front of an upstream address, for injecting network
//! faults between a client and a server (e.g. the SDK and [`super::dynamo::DynamoServer`]).
//!
//! It runs on its own std threads (one acceptor, one or two per connection), so it does not
//! depend on any tokio runtime and outlives `#[tokio::test]` runtimes. The [`Mode`] can be
//! switched at any time with [`FaultProxy::set_mode`] and applies to every chunk, so it also
//! affects connections the client keeps pooled:
//!
//! * [`Mode::Pass`]: bytes are forwarded both ways as they come.
//! * [`Mode::Delay`]: every chunk forwarded upstream → client is held back by the delay, so
//!   each HTTP response arrives at least that long after the server sent it.
//! * [`Mode::Blackhole`]: connections are accepted, whatever arrives is read and discarded,
//!   nothing is answered (a new connection does not even reach the upstream).
//! * [`Mode::Refuse`]: new connections are closed right after `accept`; switching to it cuts
//!   every open connection.
//!
//! Leaving `Blackhole` also cuts every open connection, since those have lost bytes.
//! Dropping the proxy closes the listener and all connections and joins its threads.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::loopback::lock;

/// How long the proxy waits to connect to the upstream before giving up on a connection
/// (closing it towards the client).
pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the proxy does with traffic; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Delay(Duration),
    Blackhole,
    Refuse,
}

struct Shared {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    stopping: AtomicBool,
    accepted: AtomicU64,
    next_id: AtomicU64,
    /// Sockets of the open connections (both sides), by connection id, for cutting them.
    open: Mutex<Vec<(u64, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn mode(&self) -> Mode {
        *lock(&self.mode)
    }

    fn register(&self, id: u64, stream: &TcpStream) -> bool {
        match stream.try_clone() {
            Ok(clone) => {
                lock(&self.open).push((id, clone));
                true
            }
            Err(_) => false,
        }
    }

    fn unregister(&self, id: u64) {
        lock(&self.open).retain(|(i, _)| *i != id);
    }

    /// Shuts down every open connection: blocked reads return, the pumps end.
    fn cut_all(&self) {
        for (_, s) in lock(&self.open).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        let handle = std::thread::spawn(f);
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
    }
}

/// The proxy; see the module docs.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` in [`Mode::Pass`], forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("proxy local address");
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(Mode::Pass),
            stopping: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(listener, shared))
        };
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    pub fn mode(&self) -> Mode {
        self.shared.mode()
    }

    /// Switches the mode for new connections and for every chunk from now on. Switching to
    /// [`Mode::Refuse`], or away from [`Mode::Blackhole`], cuts all open connections.
    pub fn set_mode(&self, mode: Mode) {
        let old = std::mem::replace(&mut *lock(&self.shared.mode), mode);
        if mode == Mode::Refuse || (old == Mode::Blackhole && mode != Mode::Blackhole) {
            self.shared.cut_all();
        }
    }

    /// Connections accepted so far (in any mode, including refused ones).
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        // Each forwarded connection registers two sockets, a black-holed one one socket.
        let open = lock(&self.shared.open);
        let mut ids: Vec<u64> = open.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.cut_all();
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = stream else {
            // EMFILE and the like: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        match shared.mode() {
            Mode::Refuse => drop(client),
            Mode::Blackhole => {
                if shared.register(id, &client) {
                    let s = Arc::clone(&shared);
                    shared.spawn(move || blackhole(id, client, s));
                }
            }
            Mode::Pass | Mode::Delay(_) => {
                let s = Arc::clone(&shared);
                shared.spawn(move || forward(id, client, s));
            }
        }
    }
}

/// Reads and discards until the client closes or the connection is cut.
fn blackhole(id: u64, mut client: TcpStream, shared: Arc<Shared>) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(1..) = client.read(&mut buf) {}
    let _ = client.shutdown(Shutdown::Both);
    shared.unregister(id);
}

/// Connects upstream and pumps both ways until either side is done.
fn forward(id: u64, client: TcpStream, shared: Arc<Shared>) {
    let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, UPSTREAM_CONNECT_TIMEOUT)
    else {
        // Upstream down: the client sees its connection closed.
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = upstream.set_nodelay(true);
    let registered = shared.register(id, &client) && shared.register(id, &upstream);
    let clones = client
        .try_clone()
        .and_then(|c| Ok((c, upstream.try_clone()?)));
    let (Ok((client_reader, upstream_writer)), true) = (clones, registered) else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        shared.unregister(id);
        return;
    };
    // `set_mode(Refuse)` and `Drop` set their flag before cutting the registered sockets: if
    // that cut came before the registration above, the flag is visible here.
    if shared.mode() == Mode::Refuse || shared.stopping.load(Ordering::SeqCst) {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    }

    let requests = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || pump(client_reader, upstream_writer, &shared, false))
    };
    pump(upstream, client, &shared, true);
    let _ = requests.join();
    shared.unregister(id);
}

/// Copies `from` → `to` chunk by chunk, applying the current mode to each chunk. On EOF the
/// write half of `to` is shut down (the half-close is passed on); on error or `Refuse` both
/// sockets are shut down.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, to_client: bool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
            Err(_) => break,
        };
        match shared.mode() {
            Mode::Pass => {}
            Mode::Delay(delay) => {
                if to_client {
                    std::thread::sleep(delay);
                }
            }
            Mode::Blackhole => continue,
            Mode::Refuse => break,
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
