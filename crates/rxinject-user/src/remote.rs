//! A simulated Windows that several processes share: the wire protocol between
//! `rxinject sim serve` and its clients, and the client backend (`RXINJECT_SIM`).
//!
//! A connection is a process. Its requests are the I/O a process makes on the device, and
//! they are asynchronous as overlapped I/O is: each carries an id, several can be
//! outstanding on one handle, they complete in whatever order the driver completes them, and
//! any can be cancelled (`CancelIoEx`). When the connection goes (the process exits, or
//! dies), the server does what Windows does at process exit: cancels what is outstanding,
//! then closes every handle left open (IRP_MJ_CLEANUP, then IRP_MJ_CLOSE).
//!
//! ## Frames
//! Every message is a frame: a little-endian `u32` length, then that many bytes: a kind
//! (`u8`), the request id (`u64`), and the kind's fields (little-endian), a variable part
//! last. The client numbers its requests; the server answers each (but `CANCEL`) with one
//! `DONE` of the same id: an NT status, the IRP's `Information` and its output bytes.
//!
//! | kind | request | fields | `DONE` carries |
//! |---|---|---|---|
//! | 1 | `HELLO` | `u32` protocol version, `u32` client pid | the version and the adapters' short names |
//! | 2 | `OPEN` | path (UTF-8) | the handle's number in `Information` |
//! | 3 | `CLOSE` | `u64` handle | (when IRP_MJ_CLOSE is done) |
//! | 4 | `IOCTL` | `u64` handle, `u32` code, `u32` output length, input | the IRP's result |
//! | 5 | `WRITE` | `u64` handle, data | the IRP's result |
//! | 6 | `READ` | `u64` handle, `u32` length | the IRP's result |
//! | 7 | `CANCEL` | `u64` id of the request to cancel | nothing: the request completes |
//! | 8 | `STATS` | | [`ServerStats`] |
//! | 9 | `WAIT` | `u32` connections at most, `u32` outstanding requests at least | once both hold |
//! | 10 | `SHUTDOWN` | | the simulator's report; then the server exits |
//! | 11 | `ADDRESSES` | | each adapter's `u32` if_index, IPv4 address, `u8` prefix length (what Windows' IP Helper lists) |
//!
//! A frame that does not parse ends the connection, as a process that dies would.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::{Backend, Channel, Error, NTSTATUS, Reply};

/// The protocol's version (`HELLO`).
pub const PROTO_VERSION: u32 = 1;
/// The environment variable naming a server: a Unix socket's path, or `HOST:PORT`.
pub const ENV: &str = "RXINJECT_SIM";
/// The largest frame either side sends or accepts.
pub const MAX_FRAME: usize = (64 << 20) + 64;
/// The largest output or read length a request may ask the server to allocate.
pub const MAX_IO_BYTES: u32 = 64 << 20;

/// Request kinds.
pub mod kind {
    pub const HELLO: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const CLOSE: u8 = 3;
    pub const IOCTL: u8 = 4;
    pub const WRITE: u8 = 5;
    pub const READ: u8 = 6;
    pub const CANCEL: u8 = 7;
    pub const STATS: u8 = 8;
    pub const WAIT: u8 = 9;
    pub const SHUTDOWN: u8 = 10;
    pub const ADDRESSES: u8 = 11;
    /// The server's answer.
    pub const DONE: u8 = 0x80;
}

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Hello {
        proto: u32,
        pid: u32,
    },
    Open {
        path: String,
    },
    Close {
        handle: u64,
    },
    Ioctl {
        handle: u64,
        code: u32,
        output_len: u32,
        input: Vec<u8>,
    },
    Write {
        handle: u64,
        data: Vec<u8>,
    },
    Read {
        handle: u64,
        len: u32,
    },
    Cancel {
        target: u64,
    },
    Stats,
    /// Answered once at most `connections` connections are left and at least
    /// `outstanding` requests (all connections together) are outstanding.
    Wait {
        connections: u32,
        outstanding: u32,
    },
    Shutdown,
    Addresses,
}

/// The server's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    pub status: NTSTATUS,
    pub information: u64,
    pub data: Vec<u8>,
}

/// A frame that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtoError(pub String);

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads little-endian fields off a frame.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if self.0.len() < n {
            return Err(ProtoError(format!(
                "a frame ends {} bytes early",
                n - self.0.len()
            )));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtoError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from(self.u32()?) | (u64::from(self.u32()?) << 32))
    }
    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).to_vec()
    }
    fn end(&self) -> Result<(), ProtoError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ProtoError(format!("{} bytes after the last field", self.0.len())))
        }
    }
}

fn header(kind: u8, id: u64, extra: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + 9 + extra);
    v.extend_from_slice(&[0; 4]);
    v.push(kind);
    v.extend_from_slice(&id.to_le_bytes());
    v
}

fn seal(mut v: Vec<u8>) -> Vec<u8> {
    let len = (v.len() - 4) as u32;
    v[..4].copy_from_slice(&len.to_le_bytes());
    v
}

/// The frame of request `id`.
pub fn encode_request(id: u64, r: &Request) -> Vec<u8> {
    let (k, extra) = match r {
        Request::Hello { .. } => (kind::HELLO, 8),
        Request::Open { path } => (kind::OPEN, path.len()),
        Request::Close { .. } => (kind::CLOSE, 8),
        Request::Ioctl { input, .. } => (kind::IOCTL, 16 + input.len()),
        Request::Write { data, .. } => (kind::WRITE, 8 + data.len()),
        Request::Read { .. } => (kind::READ, 12),
        Request::Cancel { .. } => (kind::CANCEL, 8),
        Request::Stats => (kind::STATS, 0),
        Request::Wait { .. } => (kind::WAIT, 8),
        Request::Shutdown => (kind::SHUTDOWN, 0),
        Request::Addresses => (kind::ADDRESSES, 0),
    };
    let mut v = header(k, id, extra);
    match r {
        Request::Hello { proto, pid } => {
            v.extend_from_slice(&proto.to_le_bytes());
            v.extend_from_slice(&pid.to_le_bytes());
        }
        Request::Open { path } => v.extend_from_slice(path.as_bytes()),
        Request::Close { handle } | Request::Cancel { target: handle } => {
            v.extend_from_slice(&handle.to_le_bytes());
        }
        Request::Ioctl {
            handle,
            code,
            output_len,
            input,
        } => {
            v.extend_from_slice(&handle.to_le_bytes());
            v.extend_from_slice(&code.to_le_bytes());
            v.extend_from_slice(&output_len.to_le_bytes());
            v.extend_from_slice(input);
        }
        Request::Write { handle, data } => {
            v.extend_from_slice(&handle.to_le_bytes());
            v.extend_from_slice(data);
        }
        Request::Read { handle, len } => {
            v.extend_from_slice(&handle.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
        }
        Request::Wait {
            connections,
            outstanding,
        } => {
            v.extend_from_slice(&connections.to_le_bytes());
            v.extend_from_slice(&outstanding.to_le_bytes());
        }
        Request::Stats | Request::Shutdown | Request::Addresses => {}
    }
    seal(v)
}

/// A request frame's id and request (`frame` without its length prefix).
pub fn decode_request(frame: &[u8]) -> Result<(u64, Request), ProtoError> {
    let mut f = Fields(frame);
    let k = f.u8()?;
    let id = f.u64()?;
    let r = match k {
        kind::HELLO => Request::Hello {
            proto: f.u32()?,
            pid: f.u32()?,
        },
        kind::OPEN => Request::Open {
            path: String::from_utf8(f.rest()).map_err(|_| ProtoError("a path that is not UTF-8".into()))?,
        },
        kind::CLOSE => Request::Close { handle: f.u64()? },
        kind::IOCTL => Request::Ioctl {
            handle: f.u64()?,
            code: f.u32()?,
            output_len: f.u32()?,
            input: f.rest(),
        },
        kind::WRITE => Request::Write {
            handle: f.u64()?,
            data: f.rest(),
        },
        kind::READ => Request::Read {
            handle: f.u64()?,
            len: f.u32()?,
        },
        kind::CANCEL => Request::Cancel { target: f.u64()? },
        kind::STATS => Request::Stats,
        kind::WAIT => Request::Wait {
            connections: f.u32()?,
            outstanding: f.u32()?,
        },
        kind::SHUTDOWN => Request::Shutdown,
        kind::ADDRESSES => Request::Addresses,
        other => return Err(ProtoError(format!("unknown request kind {other}"))),
    };
    f.end()?;
    Ok((id, r))
}

/// The `DONE` frame answering request `id`.
pub fn encode_done(id: u64, d: &Done) -> Vec<u8> {
    let mut v = header(kind::DONE, id, 12 + d.data.len());
    v.extend_from_slice(&d.status.0.to_le_bytes());
    v.extend_from_slice(&d.information.to_le_bytes());
    v.extend_from_slice(&d.data);
    seal(v)
}

/// A `DONE` frame's id and answer.
pub fn decode_done(frame: &[u8]) -> Result<(u64, Done), ProtoError> {
    let mut f = Fields(frame);
    if f.u8()? != kind::DONE {
        return Err(ProtoError(
            "the server sent something other than an answer".into(),
        ));
    }
    let id = f.u64()?;
    let status = NTSTATUS(f.u32()? as i32);
    let information = f.u64()?;
    Ok((
        id,
        Done {
            status,
            information,
            data: f.rest(),
        },
    ))
}

/// Reads one frame (without its length). `None` at the end of the stream between frames.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if !(9..=MAX_FRAME).contains(&len) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes (9 to {MAX_FRAME})"),
        ));
    }
    let mut v = vec![0u8; len];
    r.read_exact(&mut v)?;
    Ok(Some(v))
}

/// What the server counts (`STATS`), as little-endian `u64`s in this order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Frames the driver injected that reached the host stack.
    pub delivered_rx: u64,
    /// Frames the driver injected that reached the wire.
    pub delivered_tx: u64,
    /// Frames of the `--wire` file the simulated NIC dropped.
    pub wire_dropped: u64,
    /// 1 once the wire has played all of its file.
    pub wire_done: u64,
    /// Connections (processes) now.
    pub connections: u64,
    /// Handles of the device open now, as the I/O manager counts them.
    pub handles: u64,
    /// Requests of the clients not answered yet, all connections together.
    pub outstanding: u64,
    /// Rule violations the simulator recorded so far (warnings not counted).
    pub violations: u64,
    /// IRPs the driver has not completed now, as the I/O manager counts them.
    pub irps_pending: u64,
    /// IRPs a cancel reached before they completed, ever.
    pub irps_cancelled: u64,
    /// sim0's miniport packet filter now (`NDIS_PACKET_TYPE_*`).
    pub packet_filter: u64,
}

impl ServerStats {
    const FIELDS: usize = 11;

    pub fn to_bytes(&self) -> Vec<u8> {
        [
            self.delivered_rx,
            self.delivered_tx,
            self.wire_dropped,
            self.wire_done,
            self.connections,
            self.handles,
            self.outstanding,
            self.violations,
            self.irps_pending,
            self.irps_cancelled,
            self.packet_filter,
        ]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
    }

    pub fn from_bytes(b: &[u8]) -> Option<ServerStats> {
        if b.len() < Self::FIELDS * 8 {
            return None;
        }
        let v = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(a)
        };
        Some(ServerStats {
            delivered_rx: v(0),
            delivered_tx: v(1),
            wire_dropped: v(2),
            wire_done: v(3),
            connections: v(4),
            handles: v(5),
            outstanding: v(6),
            violations: v(7),
            irps_pending: v(8),
            irps_cancelled: v(9),
            packet_filter: v(10),
        })
    }
}

/// `HELLO`'s answer: the protocol version, then each adapter's `if_index` and short name.
pub fn encode_hello(names: &[(u32, String)]) -> Vec<u8> {
    let mut v = PROTO_VERSION.to_le_bytes().to_vec();
    v.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for (i, n) in names {
        v.extend_from_slice(&i.to_le_bytes());
        let b = &n.as_bytes()[..n.len().min(usize::from(u16::MAX))];
        v.extend_from_slice(&(b.len() as u16).to_le_bytes());
        v.extend_from_slice(b);
    }
    v
}

/// Parses `HELLO`'s answer.
pub fn decode_hello(b: &[u8]) -> Result<(u32, Vec<(u32, String)>), ProtoError> {
    let mut f = Fields(b);
    let proto = f.u32()?;
    let n = f.u32()?;
    let mut names = Vec::new();
    for _ in 0..n {
        let i = f.u32()?;
        let len = f.u16()?;
        let name = String::from_utf8_lossy(f.take(usize::from(len))?).into_owned();
        names.push((i, name));
    }
    Ok((proto, names))
}

// ---------------------------------------------------------------------------------------------
// The client.
// ---------------------------------------------------------------------------------------------

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A Unix socket (not on Windows).
    Unix(std::path::PathBuf),
    /// TCP on loopback.
    Tcp(std::net::SocketAddr),
}

impl Address {
    /// `HOST:PORT` (an IP address) is TCP; anything else is a Unix socket's path.
    pub fn parse(s: &str) -> Address {
        match s.trim().parse::<std::net::SocketAddr>() {
            Ok(a) => Address::Tcp(a),
            Err(_) => Address::Unix(s.into()),
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// The server `RXINJECT_SIM` names, if it is set.
pub fn from_env() -> Option<Address> {
    std::env::var_os(ENV)
        .filter(|v| !v.is_empty())
        .map(|v| Address::parse(&v.to_string_lossy()))
}

/// A connection's byte stream (Unix socket or TCP).
pub(crate) trait Stream: Read + Write + Send {
    fn split(&self) -> std::io::Result<Box<dyn Stream>>;
    fn shutdown(&self);
}

impl Stream for std::net::TcpStream {
    fn split(&self) -> std::io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown(&self) {
        let _ = std::net::TcpStream::shutdown(self, std::net::Shutdown::Both);
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn split(&self) -> std::io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown(&self) {
        let _ = std::os::unix::net::UnixStream::shutdown(self, std::net::Shutdown::Both);
    }
}

fn connect(a: &Address) -> std::io::Result<Box<dyn Stream>> {
    match a {
        Address::Tcp(t) => {
            let s = std::net::TcpStream::connect(t)?;
            s.set_nodelay(true)?;
            Ok(Box::new(s))
        }
        #[cfg(unix)]
        Address::Unix(p) => Ok(Box::new(std::os::unix::net::UnixStream::connect(p)?)),
        #[cfg(not(unix))]
        Address::Unix(p) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "{} is not HOST:PORT (this system has no Unix sockets)",
                p.display()
            ),
        )),
    }
}

/// Called when a request is answered (or the connection ends first).
type Notify = Box<dyn FnOnce() + Send>;

/// What the reader thread has received.
#[derive(Default)]
struct Inbox {
    done: HashMap<u64, Done>,
    /// Requests whose answer someone wants to hear of (an OVERLAPPED's event).
    notify: HashMap<u64, Notify>,
    /// Why the connection ended, once it has.
    gone: Option<String>,
}

/// One connection to a server: one simulated process. Requests may come from several
/// threads; each waits for its own answer.
pub struct Connection {
    address: Address,
    out: Mutex<Box<dyn Stream>>,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    next_id: std::sync::atomic::AtomicU64,
    /// The adapters' short names, from `HELLO`.
    names: Vec<(u32, String)>,
}

/// A request sent and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pending(pub u64);

impl Connection {
    /// Connects and says hello.
    pub fn connect(address: &Address) -> Result<Arc<Connection>, Error> {
        let s = connect(address).map_err(|error| Error::Io {
            what: format!(
                "connecting to the simulator at {address} ({ENV}; is `rxinject sim serve` running?)"
            ),
            error,
        })?;
        let mut reader = s.split().map_err(|error| Error::Io {
            what: format!("connecting to the simulator at {address}"),
            error,
        })?;
        let inbox: Arc<(Mutex<Inbox>, Condvar)> = Arc::default();
        let theirs = Arc::clone(&inbox);
        std::thread::Builder::new()
            .name("rxinject-sim-client".into())
            .spawn(move || {
                let why = loop {
                    match read_frame(&mut reader) {
                        Ok(Some(f)) => match decode_done(&f) {
                            Ok((id, d)) => {
                                let (m, cv) = &*theirs;
                                let notify = {
                                    let mut inbox = lock(m);
                                    inbox.done.insert(id, d);
                                    inbox.notify.remove(&id)
                                };
                                cv.notify_all();
                                if let Some(f) = notify {
                                    f();
                                }
                            }
                            Err(e) => break format!("the simulator sent a bad frame: {e}"),
                        },
                        Ok(None) => break "the simulator closed the connection".to_string(),
                        Err(e) => break format!("the connection to the simulator failed: {e}"),
                    }
                };
                let (m, cv) = &*theirs;
                let waiting: Vec<Notify> = {
                    let mut inbox = lock(m);
                    inbox.gone = Some(why);
                    inbox.notify.drain().map(|(_, f)| f).collect()
                };
                cv.notify_all();
                for f in waiting {
                    f();
                }
            })
            .map_err(|error| Error::Io {
                what: "starting the simulator client's reader".into(),
                error,
            })?;
        let mut c = Connection {
            address: address.clone(),
            out: Mutex::new(s),
            inbox,
            next_id: std::sync::atomic::AtomicU64::new(1),
            names: Vec::new(),
        };
        let d = c.call(&Request::Hello {
            proto: PROTO_VERSION,
            pid: std::process::id(),
        })?;
        let (proto, names) =
            decode_hello(&d.data).map_err(|e| Error::Simulator(format!("{address}: {e}")))?;
        if proto != PROTO_VERSION || !d.status.is_success() {
            return Err(Error::Simulator(format!(
                "the simulator at {address} speaks protocol {proto}, this tool {PROTO_VERSION}: run matching versions"
            )));
        }
        c.names = names;
        Ok(Arc::new(c))
    }

    /// Where the server is.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The adapters' short names (`sim0`).
    pub fn adapter_name(&self, if_index: u32) -> Option<String> {
        self.names
            .iter()
            .find(|(i, _)| *i == if_index)
            .map(|(_, n)| n.clone())
    }

    /// Sends a request; its answer comes later ([`Connection::wait`]).
    pub fn start(&self, r: &Request) -> Result<Pending, Error> {
        self.send(r, None)
    }

    /// As [`Connection::start`], and calls `notify` (on the connection's reader thread) once
    /// the answer is there to [`Connection::poll`], or the connection has ended: what the
    /// I/O manager does with an OVERLAPPED's event.
    pub fn start_notify(&self, r: &Request, notify: Box<dyn FnOnce() + Send>) -> Result<Pending, Error> {
        self.send(r, Some(notify))
    }

    fn send(&self, r: &Request, notify: Option<Notify>) -> Result<Pending, Error> {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(f) = notify {
            let (m, _) = &*self.inbox;
            let mut inbox = lock(m);
            if inbox.gone.is_some() {
                drop(inbox);
                f();
            } else {
                inbox.notify.insert(id, f);
            }
        }
        let frame = encode_request(id, r);
        let mut out = lock(&self.out);
        out.write_all(&frame).map_err(|error| Error::Io {
            what: format!("sending a request to the simulator at {}", self.address),
            error,
        })?;
        Ok(Pending(id))
    }

    /// The answer to `p`, if it has come (taken: ask once).
    pub fn poll(&self, p: Pending) -> Result<Option<Done>, Error> {
        let (m, _) = &*self.inbox;
        let mut inbox = lock(m);
        if let Some(d) = inbox.done.remove(&p.0) {
            return Ok(Some(d));
        }
        match &inbox.gone {
            Some(why) => Err(Error::Simulator(why.clone())),
            None => Ok(None),
        }
    }

    /// Waits for the answer to `p`.
    pub fn wait(&self, p: Pending) -> Result<Done, Error> {
        let (m, cv) = &*self.inbox;
        let mut inbox = lock(m);
        loop {
            if let Some(d) = inbox.done.remove(&p.0) {
                return Ok(d);
            }
            if let Some(why) = &inbox.gone {
                return Err(Error::Simulator(why.clone()));
            }
            inbox = cv.wait(inbox).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// `CancelIoEx` for `p`: asks; the request completes (cancelled, or as it would have).
    pub fn cancel(&self, p: Pending) -> Result<(), Error> {
        self.start(&Request::Cancel { target: p.0 }).map(|_| ())
    }

    /// Sends `r` and waits for its answer.
    pub fn call(&self, r: &Request) -> Result<Done, Error> {
        let p = self.start(r)?;
        self.wait(p)
    }

    /// What the server counts.
    pub fn stats(&self) -> Result<ServerStats, Error> {
        let d = self.call(&Request::Stats)?;
        ServerStats::from_bytes(&d.data)
            .ok_or_else(|| Error::Simulator("the simulator's statistics are malformed".into()))
    }

    /// Waits until at most `n` connections (this one included) are left.
    pub fn wait_clients(&self, n: u32) -> Result<(), Error> {
        self.call(&Request::Wait {
            connections: n,
            outstanding: 0,
        })
        .map(|_| ())
    }

    /// Waits until at least `n` requests (of all connections) are outstanding.
    pub fn wait_outstanding(&self, n: u32) -> Result<(), Error> {
        self.call(&Request::Wait {
            connections: u32::MAX,
            outstanding: n,
        })
        .map(|_| ())
    }

    /// Stops the server: it closes every handle, unloads the driver and answers with its
    /// report. Ok(report) if the report is clean, Err(report) otherwise.
    pub fn shutdown(&self) -> Result<Result<String, String>, Error> {
        let d = self.call(&Request::Shutdown)?;
        let text = String::from_utf8_lossy(&d.data).into_owned();
        Ok(if d.status.is_success() {
            Ok(text)
        } else {
            Err(text)
        })
    }

    /// The simulated machine's adapter addresses: (if_index, IPv4 address, prefix length).
    pub fn addresses(&self) -> Result<Vec<(u32, [u8; 4], u8)>, Error> {
        let d = self.call(&Request::Addresses)?;
        let b = &d.data;
        let n = b
            .get(..4)
            .map_or(0, |x| u32::from_le_bytes([x[0], x[1], x[2], x[3]])) as usize;
        Ok((0..n)
            .filter_map(|i| {
                let e = b.get(4 + i * 9..4 + i * 9 + 9)?;
                Some((
                    u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                    [e[4], e[5], e[6], e[7]],
                    e[8],
                ))
            })
            .collect())
    }

    /// Opens the device: a handle number.
    pub fn open(&self, path: &str) -> Result<u64, Error> {
        let d = self.call(&Request::Open { path: path.into() })?;
        if d.status.is_success() {
            Ok(d.information)
        } else {
            Err(Error::Driver {
                what: format!("opening {path} in the simulator"),
                status: d.status,
            })
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Ends the reader thread too: the server sees the process go.
        lock(&self.out).shutdown();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn reply(d: Done) -> Reply {
    Reply {
        status: d.status,
        information: d.information as usize,
        data: d.data,
    }
}

/// The backend: handles of the device in the server's simulated Windows.
pub(crate) struct RemoteBackend {
    pub(crate) conn: Arc<Connection>,
    origin: Instant,
    /// What the server had counted when this client connected.
    pub(crate) at_start: ServerStats,
}

impl RemoteBackend {
    pub(crate) fn connect(address: &Address) -> Result<RemoteBackend, Error> {
        let conn = Connection::connect(address)?;
        let at_start = conn.stats()?;
        Ok(RemoteBackend {
            conn,
            origin: Instant::now(),
            at_start,
        })
    }
}

/// One handle in the server.
struct RemoteChannel {
    conn: Arc<Connection>,
    handle: u64,
}

impl Backend for RemoteBackend {
    fn open(&self) -> Result<Box<dyn Channel>, Error> {
        let handle = self.conn.open(rxinject_abi::USER_PATH)?;
        Ok(Box::new(RemoteChannel {
            conn: Arc::clone(&self.conn),
            handle,
        }))
    }

    /// The server's simulated clock follows real time.
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep_until(&self, t: Duration) {
        let now = self.now();
        if t > now {
            std::thread::sleep(t - now);
        }
    }
}

impl Channel for RemoteChannel {
    fn device_io_control(&self, code: u32, input: &[u8], output_len: usize) -> Result<Reply, Error> {
        self.conn
            .call(&Request::Ioctl {
                handle: self.handle,
                code,
                output_len: output_len.min(MAX_IO_BYTES as usize) as u32,
                input: input.to_vec(),
            })
            .map(reply)
    }

    fn write(&self, data: &[u8]) -> Result<Reply, Error> {
        self.conn
            .call(&Request::Write {
                handle: self.handle,
                data: data.to_vec(),
            })
            .map(reply)
    }

    fn read(&self, len: usize) -> Result<Reply, Error> {
        self.conn
            .call(&Request::Read {
                handle: self.handle,
                len: len.min(MAX_IO_BYTES as usize) as u32,
            })
            .map(reply)
    }
}

impl Drop for RemoteChannel {
    /// `CloseHandle`.
    fn drop(&mut self) {
        let _ = self.conn.call(&Request::Close { handle: self.handle });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_survives_its_frame() {
        let all = [
            Request::Hello { proto: 1, pid: 42 },
            Request::Open {
                path: "\\\\.\\RxInject".into(),
            },
            Request::Close { handle: 7 },
            Request::Ioctl {
                handle: 3,
                code: 0x8D51_E028,
                output_len: 16,
                input: vec![1, 2, 3],
            },
            Request::Write {
                handle: u64::MAX,
                data: vec![9; 100],
            },
            Request::Read {
                handle: 1,
                len: 1 << 20,
            },
            Request::Cancel { target: 5 },
            Request::Stats,
            Request::Wait {
                connections: 1,
                outstanding: 2,
            },
            Request::Shutdown,
            Request::Addresses,
        ];
        for (i, r) in all.iter().enumerate() {
            let f = encode_request(i as u64 + 100, r);
            let len = u32::from_le_bytes([f[0], f[1], f[2], f[3]]) as usize;
            assert_eq!(len, f.len() - 4);
            let got = read_frame(&mut &f[..]).unwrap().unwrap();
            assert_eq!(decode_request(&got), Ok((i as u64 + 100, r.clone())));
            // Cut short anywhere, it does not parse (but for the variable part's end).
            if !matches!(
                r,
                Request::Open { .. } | Request::Ioctl { .. } | Request::Write { .. }
            ) {
                assert!(decode_request(&got[..got.len() - 1]).is_err(), "{r:?}");
            }
        }
        let d = Done {
            status: NTSTATUS(0xC000_0120u32 as i32),
            information: 3,
            data: vec![4, 5],
        };
        let f = encode_done(9, &d);
        assert_eq!(decode_done(&f[4..]), Ok((9, d)));
        assert!(decode_request(&f[4..]).is_err(), "an answer is no request");
    }

    #[test]
    fn frames_out_of_bounds_are_refused() {
        for len in [0u32, 8, (MAX_FRAME + 1) as u32, u32::MAX] {
            let mut f = len.to_le_bytes().to_vec();
            f.extend_from_slice(&[kind::STATS; 16]);
            assert!(read_frame(&mut &f[..]).is_err(), "{len}");
        }
        assert!(read_frame(&mut &[][..]).unwrap().is_none(), "a clean end");
        assert!(
            read_frame(&mut &[1u8, 0][..]).is_err(),
            "an end inside the length"
        );
        assert!(
            decode_request(&[99, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(),
            "an unknown kind"
        );
        assert!(
            decode_request(&[kind::STATS, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_err(),
            "a byte too many"
        );
    }

    #[test]
    fn addresses_and_hello() {
        assert_eq!(
            Address::parse("127.0.0.1:4000"),
            Address::Tcp("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(Address::parse("/tmp/x.sock"), Address::Unix("/tmp/x.sock".into()));
        let names = vec![(1u32, "sim0".to_string()), (7, "sim1".into())];
        assert_eq!(decode_hello(&encode_hello(&names)), Ok((PROTO_VERSION, names)));
        let s = ServerStats {
            delivered_rx: 1,
            violations: 8,
            ..ServerStats::default()
        };
        assert_eq!(ServerStats::from_bytes(&s.to_bytes()), Some(s));
    }
}
