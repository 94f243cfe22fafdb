//! `rxinject sim serve`: one simulated Windows (the driver, NDIS, adapter `sim0` with its host
//! stack, and the wire) that several processes share, over a Unix socket or TCP on loopback.
//! The protocol, and what a connection means, are in [`crate::remote`].
//!
//! One thread runs the machine; the others only move bytes. An acceptor takes connections;
//! each connection has a reader, which hands whole frames to the machine's thread, and a
//! writer, which sends its answers (a client that stops reading stalls its own writer, never
//! the machine). The machine's clock follows real time here, as the machine is shared with
//! people typing in terminals: a capture's read timeout takes its real time, and the wire
//! plays its file with the file's timing from the moment the server starts.

use std::collections::HashMap;
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ndis_sim::{DeviceHandle, Irp};
use ndis_sys::{
    STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_REVISION_MISMATCH, STATUS_SUCCESS,
    STATUS_UNSUCCESSFUL,
};

use super::SimState;
use crate::remote::{self, Address, Done, Request, ServerStats};
use crate::{Error, NTSTATUS, SimOptions};

/// What `serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub address: Address,
    /// The machine: `wire` plays inbound from the start; `stack_out` and `wire_out` are
    /// written at shutdown; `driver` is the `.sys` to run.
    pub sim: SimOptions,
}

/// How the server ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the simulator's report is clean (no rule broken, nothing leaked).
    pub clean: bool,
    pub report: String,
}

/// The default socket: `$XDG_RUNTIME_DIR/rxinject-sim.sock`, or one in the temporary
/// directory named after the user.
pub fn default_socket() -> std::path::PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => std::path::PathBuf::from(d).join("rxinject-sim.sock"),
        None => {
            let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
            std::env::temp_dir().join(format!("rxinject-sim-{user}.sock"))
        }
    }
}

enum Listener {
    Unix(std::os::unix::net::UnixListener, std::path::PathBuf),
    Tcp(std::net::TcpListener),
}

type Stream = Box<dyn remote::Stream>;

impl Listener {
    fn bind(a: &Address) -> Result<(Listener, Address), Error> {
        let io = |what: String| move |error| Error::Io { what, error };
        match a {
            Address::Tcp(t) => {
                if !t.ip().is_loopback() {
                    return Err(Error::Unsupported(format!(
                        "{t} is not a loopback address: the simulator serves this machine only (127.0.0.1 or [::1])"
                    )));
                }
                let l = std::net::TcpListener::bind(t).map_err(io(format!("listening on {t}")))?;
                let local = l.local_addr().map_err(io(format!("listening on {t}")))?;
                Ok((Listener::Tcp(l), Address::Tcp(local)))
            }
            Address::Unix(p) => {
                if p.exists() {
                    if std::os::unix::net::UnixStream::connect(p).is_ok() {
                        return Err(Error::Simulator(format!(
                            "a simulator is already serving at {} (`rxinject sim stop` ends it)",
                            p.display()
                        )));
                    }
                    // A socket left by a server that died.
                    std::fs::remove_file(p)
                        .map_err(io(format!("removing the stale socket {}", p.display())))?;
                }
                let l = std::os::unix::net::UnixListener::bind(p)
                    .map_err(io(format!("listening on {}", p.display())))?;
                Ok((Listener::Unix(l, p.clone()), a.clone()))
            }
        }
    }

    fn accept(&self) -> std::io::Result<Stream> {
        match self {
            Listener::Unix(l, _) => Ok(Box::new(l.accept()?.0)),
            Listener::Tcp(l) => {
                let s = l.accept()?.0;
                s.set_nodelay(true)?;
                Ok(Box::new(s))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What the byte-moving threads tell the machine's thread.
enum Event {
    Connected {
        conn: u64,
        out: mpsc::Sender<Vec<u8>>,
        writer: std::thread::JoinHandle<()>,
    },
    Frame {
        conn: u64,
        frame: Vec<u8>,
    },
    Gone {
        conn: u64,
        why: String,
    },
}

/// A request the driver has not completed yet.
struct Outstanding {
    id: u64,
    handle: u64,
    irp: Irp,
}

/// A connection: a process.
struct Conn {
    out: mpsc::Sender<Vec<u8>>,
    /// The writer thread (joined at shutdown for the requester: its answer must leave).
    writer: Option<std::thread::JoinHandle<()>>,
    /// The client's pid (from HELLO), for the log.
    pid: Option<u32>,
    handles: HashMap<u64, DeviceHandle<'static>>,
    outstanding: Vec<Outstanding>,
}

impl Conn {
    fn send(&self, id: u64, d: &Done) {
        let _ = self.out.send(remote::encode_done(id, d));
    }

    fn who(&self, conn: u64) -> String {
        match self.pid {
            Some(p) => format!("process {p} (connection {conn})"),
            None => format!("connection {conn}"),
        }
    }
}

fn done(status: NTSTATUS) -> Done {
    Done {
        status,
        information: 0,
        data: Vec::new(),
    }
}

struct Server {
    state: SimState,
    conns: HashMap<u64, Conn>,
    /// WAIT requests: connection, id, at most this many connections, at least this many
    /// outstanding requests.
    waiters: Vec<(u64, u64, u32, u32)>,
    next_handle: u64,
    /// Real time at the start, and the machine's clock then.
    t0: Instant,
    v0: Duration,
    log: bool,
}

/// Serves until a client asks for `SHUTDOWN`. `ready` is called with the address clients
/// connect to (the port chosen, for port 0) once they can.
pub fn serve(opts: ServeOptions, log: bool, ready: impl FnOnce(&Address)) -> Result<Outcome, Error> {
    let state = SimState::start(opts.sim)?;
    let (listener, address) = Listener::bind(&opts.address)?;
    let (tx, rx) = mpsc::channel::<Event>();
    let v0 = state.now();
    let mut server = Server {
        state,
        conns: HashMap::new(),
        waiters: Vec::new(),
        next_handle: 1,
        t0: Instant::now(),
        v0,
        log,
    };
    let listener = std::sync::Arc::new(listener);
    {
        let listener = std::sync::Arc::clone(&listener);
        std::thread::Builder::new()
            .name("rxinject-sim-accept".into())
            .spawn(move || accept_loop(&listener, &tx))
            .map_err(|error| Error::Io {
                what: "starting the simulator's acceptor".into(),
                error,
            })?;
    }
    ready(&address);
    let outcome = server.run(&rx);
    drop(listener);
    outcome
}

fn accept_loop(listener: &Listener, tx: &mpsc::Sender<Event>) {
    let mut next = 1u64;
    loop {
        let Ok(stream) = listener.accept() else { continue };
        let conn = next;
        next += 1;
        let (Ok(reader), Ok(writer)) = (stream.split(), stream.split()) else {
            continue;
        };
        let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>();
        let Ok(writer) = std::thread::Builder::new()
            .name(format!("rxinject-sim-out-{conn}"))
            .spawn(move || write_loop(writer, &out_rx))
        else {
            continue;
        };
        let connected = Event::Connected {
            conn,
            out: out_tx,
            writer,
        };
        if tx.send(connected).is_err() {
            return;
        }
        let tx = tx.clone();
        let _ = std::thread::Builder::new()
            .name(format!("rxinject-sim-in-{conn}"))
            .spawn(move || read_loop(conn, reader, &tx));
        // (`stream` itself goes: the reader and the writer hold the connection.)
        drop(stream);
    }
}

fn write_loop(mut w: Stream, rx: &mpsc::Receiver<Vec<u8>>) {
    while let Ok(frame) = rx.recv() {
        if w.write_all(&frame).is_err() {
            break;
        }
    }
    w.shutdown();
}

fn read_loop(conn: u64, mut r: Stream, tx: &mpsc::Sender<Event>) {
    let why = loop {
        match remote::read_frame(&mut r) {
            Ok(Some(frame)) => {
                if tx.send(Event::Frame { conn, frame }).is_err() {
                    return;
                }
            }
            Ok(None) => break "disconnected".to_string(),
            Err(e) => break format!("connection failed: {e}"),
        }
    };
    let _ = tx.send(Event::Gone { conn, why });
}

impl Server {
    fn note(&self, what: std::fmt::Arguments<'_>) {
        if self.log {
            eprintln!("rxinject sim: {what}");
        }
    }

    /// Lets the machine's clock catch up with real time (the wire plays, timers fire).
    fn catch_up(&self) {
        let target = self.v0 + self.t0.elapsed();
        self.state.advance_to(target);
    }

    /// How long the machine has nothing to do (until the next timer or frame of the wire).
    fn idle_for(&self) -> Duration {
        let now = self.state.now();
        let timer = self.state.with(|s| s.next_timer_due()).ok().flatten();
        let next = [timer, self.state.next_due()].into_iter().flatten().min();
        let real_now = self.v0 + self.t0.elapsed();
        match next {
            // The machine's clock may be ahead of real time (a close waits out its IRPs on
            // it): the event is due when real time gets there.
            Some(t) => t
                .saturating_sub(real_now.max(now))
                .max(Duration::from_micros(200)),
            None => Duration::from_secs(3600),
        }
    }

    fn run(&mut self, rx: &mpsc::Receiver<Event>) -> Result<Outcome, Error> {
        loop {
            self.catch_up();
            self.reap();
            let ev = match rx.recv_timeout(self.idle_for()) {
                Ok(ev) => ev,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Simulator("the simulator's acceptor stopped".into()));
                }
            };
            self.catch_up();
            match ev {
                Event::Connected { conn, out, writer } => {
                    self.conns.insert(
                        conn,
                        Conn {
                            out,
                            writer: Some(writer),
                            pid: None,
                            handles: HashMap::new(),
                            outstanding: Vec::new(),
                        },
                    );
                }
                Event::Gone { conn, why } => self.gone(conn, &why),
                Event::Frame { conn, frame } => match remote::decode_request(&frame) {
                    Ok((id, Request::Shutdown)) => return Ok(self.shutdown(conn, id)),
                    Ok((id, r)) => self.request(conn, id, r),
                    Err(e) => {
                        // As a process that dies: its handles are closed; so is the connection.
                        self.gone(conn, &format!("sent a malformed frame ({e})"));
                    }
                },
            }
            self.reap();
            self.wake_waiters();
        }
    }

    fn request(&mut self, conn: u64, id: u64, r: Request) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match r {
            Request::Hello { proto, pid } => {
                c.pid = Some(pid);
                let status = if proto == remote::PROTO_VERSION {
                    STATUS_SUCCESS
                } else {
                    STATUS_REVISION_MISMATCH
                };
                let data = remote::encode_hello(&self.state.names);
                c.send(
                    id,
                    &Done {
                        status,
                        information: 0,
                        data,
                    },
                );
                let who = c.who(conn);
                self.note(format_args!("{who} connected"));
            }
            Request::Open { path } => {
                let d = match self.state.with(|s| s.open_detached(&path)) {
                    Ok(Ok(h)) => {
                        let n = self.next_handle;
                        self.next_handle += 1;
                        c.handles.insert(n, h);
                        Done {
                            status: STATUS_SUCCESS,
                            information: n,
                            data: Vec::new(),
                        }
                    }
                    Ok(Err(status)) => done(status),
                    Err(_) => done(STATUS_UNSUCCESSFUL),
                };
                c.send(id, &d);
            }
            Request::Close { handle } => match c.handles.remove(&handle) {
                // Cleanup, then close once its IRPs are done: their answers follow.
                Some(h) => {
                    h.close();
                    self.reap();
                    if let Some(c) = self.conns.get(&conn) {
                        c.send(id, &done(STATUS_SUCCESS));
                    }
                }
                None => c.send(id, &done(STATUS_INVALID_HANDLE)),
            },
            Request::Ioctl {
                handle,
                code,
                output_len,
                input,
            } => self.issue(conn, id, handle, output_len, |h| {
                h.start_device_io_control(code, &input, output_len as usize)
            }),
            Request::Write { handle, data } => self.issue(conn, id, handle, 0, |h| h.start_write(&data)),
            Request::Read { handle, len } => {
                self.issue(conn, id, handle, len, |h| h.start_read(len as usize))
            }
            Request::Cancel { target } => {
                if let Some(o) = c.outstanding.iter().find(|o| o.id == target)
                    && let Some(h) = c.handles.get(&o.handle)
                {
                    h.cancel(o.irp);
                    let _ = self.state.with(|s| s.run_until_idle());
                }
            }
            Request::Stats => {
                let s = self.stats();
                if let Some(c) = self.conns.get(&conn) {
                    c.send(
                        id,
                        &Done {
                            status: STATUS_SUCCESS,
                            information: 0,
                            data: s.to_bytes(),
                        },
                    );
                }
            }
            Request::Wait {
                connections,
                outstanding,
            } => self.waiters.push((conn, id, connections, outstanding)),
            Request::Addresses => {
                let mut data = (self.state.addresses.len() as u32).to_le_bytes().to_vec();
                for (i, ip, prefix) in &self.state.addresses {
                    data.extend_from_slice(&i.to_le_bytes());
                    data.extend_from_slice(ip);
                    data.push(*prefix);
                }
                c.send(
                    id,
                    &Done {
                        status: STATUS_SUCCESS,
                        information: 0,
                        data,
                    },
                );
            }
            Request::Shutdown => unreachable!("handled by run"),
        }
    }

    /// Issues an IRP on one of the connection's handles.
    fn issue(
        &mut self,
        conn: u64,
        id: u64,
        handle: u64,
        len: u32,
        start: impl FnOnce(&DeviceHandle<'static>) -> Irp,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if len > remote::MAX_IO_BYTES {
            c.send(id, &done(STATUS_INVALID_PARAMETER));
            return;
        }
        let Some(h) = c.handles.get(&handle) else {
            c.send(id, &done(STATUS_INVALID_HANDLE));
            return;
        };
        let irp = start(h);
        c.outstanding.push(Outstanding { id, handle, irp });
        let _ = self.state.with(|s| s.run_until_idle());
    }

    /// Answers every request whose IRP has completed.
    fn reap(&mut self) {
        for c in self.conns.values_mut() {
            let state = &self.state;
            c.outstanding.retain(|o| {
                let Ok(Some(r)) = state.with(|s| s.poll(o.irp)) else {
                    return true;
                };
                let _ = c.out.send(remote::encode_done(
                    o.id,
                    &Done {
                        status: r.status,
                        information: r.information as u64,
                        data: r.output,
                    },
                ));
                false
            });
        }
    }

    fn wake_waiters(&mut self) {
        let n = self.conns.len();
        let outstanding: usize = self.conns.values().map(|c| c.outstanding.len()).sum();
        let conns = &self.conns;
        self.waiters.retain(|&(conn, id, at_most, at_least)| {
            let Some(c) = conns.get(&conn) else { return false };
            if n > at_most as usize || outstanding < at_least as usize {
                return true;
            }
            c.send(id, &done(STATUS_SUCCESS));
            false
        });
    }

    /// A process went: Windows cancels its threads' outstanding I/O, then closes its
    /// handles (IRP_MJ_CLEANUP, then IRP_MJ_CLOSE once their IRPs are done).
    fn gone(&mut self, conn: u64, why: &str) {
        let Some(c) = self.conns.remove(&conn) else { return };
        let who = c.who(conn);
        let (handles, cancelled) = (c.handles.len(), c.outstanding.len());
        for o in &c.outstanding {
            if let Some(h) = c.handles.get(&o.handle) {
                h.cancel(o.irp);
            }
        }
        let _ = self.state.with(|s| s.run_until_idle());
        for (_, h) in c.handles {
            h.close();
        }
        // Nobody collects their results now.
        for o in &c.outstanding {
            let _ = self.state.with(|s| s.poll(o.irp));
        }
        self.waiters.retain(|&(w, ..)| w != conn);
        self.note(format_args!(
            "{who} {why}: {cancelled} requests cancelled, {handles} handles closed"
        ));
    }

    fn stats(&self) -> ServerStats {
        let (delivered_rx, delivered_tx) = self.state.delivered();
        let violations = self
            .state
            .with(|s| s.violations().iter().filter(|v| !v.is_warning()).count() as u64)
            .unwrap_or(0);
        let io = self.state.with(|s| s.io_stats()).unwrap_or_default();
        let packet_filter = self.state.with(|s| s.adapter(0).packet_filter()).unwrap_or(0);
        ServerStats {
            delivered_rx: delivered_rx as u64,
            delivered_tx: delivered_tx as u64,
            wire_dropped: self.state.wire_dropped(),
            wire_done: u64::from(self.state.wire_done()),
            connections: self.conns.len() as u64,
            handles: io.open_handles as u64,
            outstanding: self.conns.values().map(|c| c.outstanding.len() as u64).sum(),
            violations,
            irps_pending: io.pending as u64,
            irps_cancelled: io.cancelled,
            packet_filter: u64::from(packet_filter),
        }
    }

    /// Every process goes (as at shutdown), the driver is unloaded, and the requester gets
    /// the report.
    fn shutdown(&mut self, conn: u64, id: u64) -> Outcome {
        let requester = self
            .conns
            .get_mut(&conn)
            .map(|c| (c.out.clone(), c.writer.take()));
        let all: Vec<u64> = self.conns.keys().copied().collect();
        for c in all {
            self.gone(c, "ended by the shutdown");
        }
        let (clean, report) = match self.state.finish_report() {
            Ok(r) => r,
            Err(e) => (false, e.to_string()),
        };
        if let Some((out, writer)) = requester {
            let _ = out.send(remote::encode_done(
                id,
                &Done {
                    status: if clean {
                        STATUS_SUCCESS
                    } else {
                        STATUS_UNSUCCESSFUL
                    },
                    information: 0,
                    data: report.clone().into_bytes(),
                },
            ));
            // The writer sends it and ends once this last sender goes.
            drop(out);
            if let Some(w) = writer {
                let _ = w.join();
            }
        }
        Outcome { clean, report }
    }
}
